using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.HuggingFace;
using Orchestrator.Training.Tests.Reference;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

/// <summary>
/// The begin-of-sequence token a Llama-family folder's Hugging Face tokenizer adds (Llama 3's TemplateProcessing
/// post-processor, Llama 2's add_bos_token) goes once before every training source and decoding prompt, and a folder whose
/// tokenizer adds none (Qwen2; add_bos_token false) gets none. Hand-built byte-level tokenizer.json files: ids 0–255 are
/// the bytes, 256 &lt;/s&gt; (end), 257 the begin token.
/// </summary>
public sealed class LlamaBeginTokenTests : IDisposable
{
    private const int End = HfLlamaTokenizer.End;
    private const int Begin = HfLlamaTokenizer.Begin;
    private const string Llama3Template = HfLlamaTokenizer.Llama3Template;

    /// <summary>Qwen2's: ByteLevel only, no template.</summary>
    private const string ByteLevelOnly = """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}""";

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-llama-bos-");

    public void Dispose() => _root.Delete(recursive: true);

    /// <summary>A folder with a tiny checkpoint, this tokenizer.json and optionally a tokenizer_config.json.</summary>
    private static string WriteFolder(string folder, string postProcessor, string? tokenizerConfig, string modelType = "llama")
    {
        new HfLlamaFixture(new HfLlamaShape(ModelType: modelType, Vocab: Begin + 1), seed: 2).Write(folder, "F32");
        HfLlamaTokenizer.Write(folder, postProcessor, tokenizerConfig);
        return folder;
    }

    private ITextTokenizer Load(string name, string postProcessor, string? tokenizerConfig, string modelType = "llama")
    {
        string folder = WriteFolder(Path.Combine(_root.FullName, name), postProcessor, tokenizerConfig, modelType);
        return LlamaCheckpoint.LoadTokenizer(folder, LlamaCheckpoint.ReadConfig(folder));
    }

    private static int[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

    [Fact]
    public void A_template_post_processor_puts_its_begin_token_once_before_every_source_and_prompt()
    {
        var tokenizer = Load("llama3", Llama3Template, tokenizerConfig: null);
        Assert.Equal(Begin, tokenizer.BeginToken);

        // ' ' + source + ' ' then the end id, after the begin token; the target's tokens are labelled, the rest is not.
        int[] prompt = [Begin, .. Bytes(" a b "), End];
        Assert.Equal(prompt, CausalLmFormat.EncodePrompt(tokenizer, "a b"));
        var example = CausalLmFormat.Encode(tokenizer, "a b", "c", maxLength: 64);
        Assert.Equal([.. prompt, .. Bytes(" c "), End], example.InputIds);
        Assert.Equal(1, example.InputIds.Count(id => id == Begin));
        Assert.Equal([.. prompt.Select(_ => CausalLmFormat.IgnoreIndex), .. Bytes(" c "), End], example.Labels);
        Assert.Equal([Begin, .. Bytes("hi")], tokenizer.EncodeWithBegin("hi"));
        Assert.Equal(Bytes("hi"), tokenizer.Encode("hi")); // Encode alone never adds it
    }

    [Fact]
    public void Add_bos_token_false_in_tokenizer_config_wins_over_the_template()
    {
        var tokenizer = Load("no-bos", Llama3Template, """{"add_bos_token": false, "bos_token": "<|begin_of_text|>"}""");
        Assert.Null(tokenizer.BeginToken);
        Assert.Equal([.. Bytes(" a b "), End], CausalLmFormat.EncodePrompt(tokenizer, "a b"));
        Assert.Equal([.. Bytes(" a b "), End, .. Bytes(" c "), End], CausalLmFormat.Encode(tokenizer, "a b", "c", 64).InputIds);
    }

    [Fact]
    public void Add_bos_token_true_without_a_template_takes_the_id_of_tokenizer_configs_bos_token()
    {
        var tokenizer = Load("llama2-like", "null", """{"add_bos_token": true, "bos_token": {"content": "<|begin_of_text|>", "special": true}}""");
        Assert.Equal(Begin, tokenizer.BeginToken);
        Assert.Equal([Begin, .. Bytes(" a "), End], CausalLmFormat.EncodePrompt(tokenizer, "a"));
    }

    [Fact]
    public void A_qwen2_style_folder_adds_no_begin_token()
    {
        var tokenizer = Load("qwen2", ByteLevelOnly, """{"add_bos_token": false, "bos_token": null, "eos_token": "</s>"}""", modelType: "qwen2");
        Assert.Null(tokenizer.BeginToken);
        Assert.Equal([.. Bytes(" a "), End], CausalLmFormat.EncodePrompt(tokenizer, "a"));

        // Without tokenizer_config.json too: a byte-level tokenizer.json without a template adds nothing.
        Assert.Null(Load("qwen2-bare", ByteLevelOnly, tokenizerConfig: null, modelType: "qwen2").BeginToken);
    }

    [Fact]
    public void The_begin_token_is_part_of_the_model_identity_and_so_of_the_cell_key()
    {
        string withBegin = WriteFolder(Path.Combine(_root.FullName, "key-bos"), Llama3Template, null);
        string without = WriteFolder(Path.Combine(_root.FullName, "key-none"), Llama3Template, """{"add_bos_token": false}""");
        ModelIdentity a = SweepPlanner.ResolveModel(new ModelSpec(null, withBegin, 0), _root.FullName);
        ModelIdentity b = SweepPlanner.ResolveModel(new ModelSpec(null, without, 0), _root.FullName);
        Assert.Equal(Begin, a.BeginToken);
        Assert.Null(b.BeginToken);
        Assert.Contains("\"begin_token\":257", JsonSerializer.Serialize(a));
        Assert.DoesNotContain("begin_token", JsonSerializer.Serialize(b)); // keys of folders without one are as they were

        // Same files, planned with and without the begin token (a cell stored before the token was added): different keys.
        var cell = Cell(a);
        Assert.NotEqual(cell.Key, (cell with { Model = a with { BeginToken = null } }).Key);
    }

    [Fact]
    public void A_cell_planned_without_the_begin_token_its_folder_adds_is_refused_by_the_worker()
    {
        string folder = WriteFolder(Path.Combine(_root.FullName, "stale"), Llama3Template, null);
        ModelIdentity identity = SweepPlanner.ResolveModel(new ModelSpec(null, folder, 0), _root.FullName);
        using var cache = new BaseModelCache(Path.Combine(_root.FullName, "data"));
        Assert.Equal(Begin, cache.Get(identity).Tokenizer.BeginToken);
        var e = Assert.Throws<FormatException>(() => cache.Get(identity with { BeginToken = null }));
        Assert.Contains("resubmit", e.Message);
    }

    /// <summary>
    /// Text initialisation takes the ids PEFT's TEXT init takes, <c>tokenizer(" " + init_text)["input_ids"]</c>: on a folder
    /// whose tokenizer adds the begin token it comes first, and the whole is repeated or cut to the virtual tokens; a folder
    /// that adds none gets the text's tokens alone. The ids are read back from the initial prompt (each row is exactly one
    /// embedding row) and compared with ids written out by hand. The export names the text PEFT tokenises to the same ids.
    /// </summary>
    [Theory]
    [InlineData("prompt")]
    [InlineData("bbt")]
    public void A_text_initialised_prompt_takes_the_begin_token_first_as_PEFT_tokenises_the_text(string name)
    {
        string withBegin = WriteFolder(Path.Combine(_root.FullName, "init-bos"), Llama3Template, null);
        string without = WriteFolder(Path.Combine(_root.FullName, "init-none"), Llama3Template, """{"add_bos_token": false}""");
        int[] text = Bytes(" ab");
        Assert.Equal([Begin, .. text, Begin, .. text[..2]], InitialIds(withBegin, name)); // 7 virtual tokens: 4 ids, then repeated
        Assert.Equal([.. text, .. text, text[0]], InitialIds(without, name));
    }

    [Fact]
    public void A_text_initialised_prompt_exports_the_text_whose_PEFT_ids_are_its_initial_ids()
    {
        string folder = WriteFolder(Path.Combine(_root.FullName, "init-export"), Llama3Template, null);
        using var model = LlamaCheckpoint.Load(folder);
        var tokenizer = LlamaCheckpoint.LoadTokenizer(folder, model.Config);
        using var method = PeftRegistry.Create("prompt", TextInit("prompt"));
        method.Prepare(model, new PeftContext(0, tokenizer));
        string export = Path.Combine(_root.FullName, "export");
        HfPeftFormat.Export(method, model, export, "test/llama-base");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(export, HfPeftFormat.AdapterConfigFile)))!.AsObject();
        Assert.Equal("TEXT", config["prompt_tuning_init"]!.GetValue<string>());
        Assert.Equal("test/llama-base", config["tokenizer_name_or_path"]!.GetValue<string>());
        string initText = config["prompt_tuning_init_text"]!.GetValue<string>();
        Assert.Equal(" ab", initText);
        // transformers' tokenizer(" ab")["input_ids"] on this folder: its template puts <|begin_of_text|> first.
        int[] peft = [Begin, .. Bytes(initText)];
        Assert.Equal(Enumerable.Range(0, 7).Select(i => peft[i % peft.Length]), InitialIds(method, model));
    }

    private static Dictionary<string, string> TextInit(string name)
    {
        var options = new Dictionary<string, string> { ["length"] = "7", ["init"] = "text", ["init_text"] = "ab" };
        if (name == "bbt") options["dim"] = "4";
        return options;
    }

    /// <summary>The ids whose embedding rows the freshly initialised prompt of <paramref name="name"/> on the folder's base holds.</summary>
    private static int[] InitialIds(string folder, string name)
    {
        using var model = LlamaCheckpoint.Load(folder);
        using var method = PeftRegistry.Create(name, TextInit(name));
        method.Prepare(model, new PeftContext(0, LlamaCheckpoint.LoadTokenizer(folder, model.Config)));
        return InitialIds(method, model);
    }

    private static int[] InitialIds(IPeftMethod method, Orchestrator.Training.Models.CausalLm model)
    {
        float[][] rows = Rows(method.StoredTensors().Single(kv => kv.Key == "prompt_embeddings").Value);
        float[][] embeddings = Rows(model.TokenEmbeddings);
        return rows.Select(r => Array.FindIndex(embeddings, e => e.SequenceEqual(r))).ToArray();
    }

    private static float[][] Rows(TorchSharp.torch.Tensor t)
    {
        float[] values = t.detach().cpu().data<float>().ToArray();
        int width = (int)t.shape[1];
        return Enumerable.Range(0, (int)t.shape[0]).Select(i => values[(i * width)..((i + 1) * width)]).ToArray();
    }

    [Fact]
    public void A_begin_token_that_is_added_but_named_nowhere_is_refused()
    {
        string folder = WriteFolder(Path.Combine(_root.FullName, "unnamed"), "null", """{"add_bos_token": true}""");
        File.WriteAllText(Path.Combine(folder, "config.json"), File.ReadAllText(Path.Combine(folder, "config.json")).Replace("\"bos_token_id\": 1,", ""));
        var e = Assert.Throws<FormatException>(() => LlamaBeginToken.Of(folder));
        Assert.Contains("add_bos_token: true", e.Message);
    }

    private static CellDefinition Cell(ModelIdentity model) => new(
        CellDefinition.CurrentCodeVersion,
        new DatasetIdentity("jsonl", "/d.jsonl", "d", new SortedDictionary<string, string>(), null),
        "default", model, "finetune", new SortedDictionary<string, string>(), 10, 0,
        new ManifestIdentity(CellExpander.ManifestAlgorithm, CellExpander.TrainingPool, 0, false, 0.3), 0,
        new TrainingSettings(1e-3, 5, 2, 0, 2, 0), new DecodingSettings("greedy", 1, 6, 1));
}
