using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.HuggingFace;

/// <summary>Fields and key names several PEFT types share, for the methods' <see cref="IHfPeftMapping"/>s.</summary>
internal static class HfPeftFields
{
    /// <summary>PEFT's key prefix for a GPT-2 base (<c>base_model.model.transformer.h.{i}…</c>).</summary>
    public const string Gpt2TensorPrefix = "base_model.model.transformer.";

    /// <summary>PEFT's key prefix for a Llama-family base (<c>base_model.model.model.layers.{i}…</c>).</summary>
    public const string LlamaTensorPrefix = "base_model.model.model.";

    /// <summary>The key prefix PEFT uses for <paramref name="shape"/>'s family.</summary>
    public static string TensorPrefix(ModelShape shape) => shape.IsLlama ? LlamaTensorPrefix : Gpt2TensorPrefix;

    /// <summary>The key prompt-learning types store their (virtual-token) table under.</summary>
    public const string PromptEmbeddings = "prompt_embeddings";

    /// <summary>
    /// PEFT's prompt-learning fields. For prefix-tuning under grouped-query attention PEFT stores one key/value per key/value
    /// head: token_dim = KeyValueHeads·HeadDim and num_attention_heads = KeyValueHeads (equal to Width and Heads on GPT-2).
    /// </summary>
    public static JsonObject PromptLearning(ModelShape config, int virtualTokens, bool prefix = false) => new()
    {
        ["num_virtual_tokens"] = virtualTokens,
        ["token_dim"] = prefix ? config.KeyValueWidth : config.Width,
        ["num_transformer_submodules"] = 1,
        ["num_attention_heads"] = prefix ? config.KeyValueHeads : config.Heads,
        ["num_layers"] = config.Layers,
        ["modules_to_save"] = null,
    };

    /// <summary>
    /// PEFT's prompt initialisation fields, labelled only as PEFT would reproduce them: TEXT with <c>' ' + text</c> (PEFT
    /// takes <c>tokenizer(text)["input_ids"]</c>: no special tokens for GPT-2, the begin token first for a Llama-family
    /// tokenizer that adds one; our init takes the same ids, <c>PromptInit.TextIds</c>) and the tokenizer, and only when
    /// a tokenizer is named (PEFT refuses TEXT without one); SAMPLE_VOCAB only when the sample covered every embedding row,
    /// as PEFT's does; RANDOM otherwise. PEFT reads the field only to initialise a new prompt; the trained prompt is the weights.
    /// </summary>
    public static void PromptInitFields(JsonObject fields, string init, string? initText, int? sampledVocabulary, ModelShape config, string? tokenizer)
    {
        bool text = init == "text" && initText is not null && !string.IsNullOrEmpty(tokenizer);
        bool wholeVocabulary = init == "vocab" && sampledVocabulary == config.VocabSize;
        fields["prompt_tuning_init"] = text ? "TEXT" : wholeVocabulary ? "SAMPLE_VOCAB" : "RANDOM";
        fields["prompt_tuning_init_text"] = text ? " " + initText : null;
        fields["tokenizer_name_or_path"] = text ? tokenizer : null;
        fields["tokenizer_kwargs"] = null;
    }

    /// <summary>
    /// Checks a prompt-learning config against the model and returns its number of virtual tokens. Prefix-tuning under
    /// grouped-query attention: PEFT stores token_dim = KeyValueHeads·HeadDim, KeyValueHeads heads.
    /// </summary>
    public static int CheckPromptLearning(JsonObject cfg, ModelShape config, string path, bool prefix = false)
    {
        var problems = new List<string>();
        void Check(string key, int expected)
        {
            if (cfg[key] is JsonNode n && n.GetValueKind() == JsonValueKind.Number && n.GetValue<int>() != expected)
            {
                problems.Add($"{key} is {n.GetValue<int>()}, the model has {expected}");
            }
        }

        Check("token_dim", prefix ? config.KeyValueWidth : config.Width);
        Check("num_layers", config.Layers);
        Check("num_attention_heads", prefix ? config.KeyValueHeads : config.Heads);
        Check("num_transformer_submodules", 1);
        if (problems.Count > 0) throw new FormatException($"{path}: {string.Join("; ", problems)}.");
        return Required(cfg, "num_virtual_tokens", path).GetValue<int>();
    }

    /// <summary>The folder's <c>prompt_embeddings</c> as the method's stored tensor <paramref name="storedName"/>.</summary>
    public static Dictionary<string, Tensor> PromptEmbeddingsAs(Dictionary<string, Tensor> tensors, string storedName, string path)
    {
        if (!tensors.TryGetValue(PromptEmbeddings, out Tensor? t))
        {
            throw new FormatException($"{path}: the weights lack 'prompt_embeddings' (found: {string.Join(", ", tensors.Keys)}).");
        }

        return new Dictionary<string, Tensor>(StringComparer.Ordinal) { [storedName] = t };
    }

    public static JsonNode Required(JsonObject cfg, string key, string path) =>
        cfg[key] is JsonNode n && n.GetValueKind() != JsonValueKind.Null ? n : throw new FormatException($"{path} lacks '{key}'.");

    public static string Number(JsonNode node) => node.GetValue<double>().ToString("R", CultureInfo.InvariantCulture);

    public static string Integer(int value) => value.ToString(CultureInfo.InvariantCulture);

    public static List<string> Strings(JsonNode? node) => node switch
    {
        null => [],
        JsonArray a => a.Select(x => x?.GetValue<string>() ?? "").ToList(),
        _ when node.GetValueKind() == JsonValueKind.String => [node.GetValue<string>()],
        _ => [],
    };
}
