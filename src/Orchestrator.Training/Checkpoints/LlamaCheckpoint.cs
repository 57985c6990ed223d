using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Reading and writing Llama-family checkpoints in the transformers layout: <c>config.json</c>, optional
/// <c>generation_config.json</c>, and <c>model.safetensors</c> or shards listed by <c>model.safetensors.index.json</c>, with
/// tensors named <c>model.embed_tokens.weight</c>, <c>model.layers.{i}.self_attn.q_proj.weight</c>, …, <c>model.norm.weight</c>,
/// <c>lm_head.weight</c>, stored as F32, F16 or BF16. Weights are converted to float32 one tensor at a time straight into the
/// model's parameters, so the checkpoint is never held twice.
/// </summary>
public static partial class LlamaCheckpoint
{
    public const string IndexFile = "model.safetensors.index.json";
    public const string GenerationConfigFile = "generation_config.json";

    private static readonly HashSet<string> WeightDTypes = new(StringComparer.Ordinal) { "F32", "F16", "BF16" };

    /// <summary>True when <paramref name="directory"/> has a config.json whose model_type is llama, mistral or qwen2.</summary>
    public static bool IsLlamaFolder(string directory)
    {
        string config = Path.Combine(directory, ModelCheckpoint.ConfigFile);
        return File.Exists(config) && LlamaConfig.IsLlamaFamily(File.ReadAllText(config));
    }

    /// <summary>
    /// The folder's config, with bos/eos ids from <c>generation_config.json</c> where it names them (transformers' generate
    /// prefers them) and from config.json otherwise.
    /// </summary>
    public static LlamaConfig ReadConfig(string directory)
    {
        string path = Path.Combine(directory, ModelCheckpoint.ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} has no {ModelCheckpoint.ConfigFile}.", path);
        LlamaConfig config;
        try
        {
            config = LlamaConfig.FromJson(File.ReadAllText(path));
        }
        catch (FormatException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{path}: {e.Message}", e);
        }

        string generation = Path.Combine(directory, GenerationConfigFile);
        if (File.Exists(generation) && JsonNode.Parse(File.ReadAllText(generation)) is JsonObject g)
        {
            if (g["bos_token_id"] is JsonValue bos) config = config with { BosTokenId = bos.GetValue<int>() };
            if (g["eos_token_id"] is JsonArray eosList) config = config with { EosTokenIds = eosList.Select(e => e!.GetValue<int>()).ToArray() };
            else if (g["eos_token_id"] is JsonValue eos) config = config with { EosTokenIds = [eos.GetValue<int>()] };
        }

        return config;
    }

    /// <summary>Loads the folder's model (eval mode, CPU float32).</summary>
    /// <exception cref="FormatException">Missing, unexpected or misshaped tensors, named.</exception>
    public static LlamaModel Load(string directory)
    {
        LlamaConfig config = ReadConfig(directory);
        var model = new LlamaModel(config);
        try
        {
            LoadWeights(model, directory);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The safetensors files of a folder: the shards named by the index, or model.safetensors.</summary>
    public static IReadOnlyList<string> WeightFiles(string directory)
    {
        string index = Path.Combine(directory, IndexFile);
        if (File.Exists(index))
        {
            JsonObject map = (JsonNode.Parse(File.ReadAllText(index)) as JsonObject)?["weight_map"] as JsonObject
                ?? throw new FormatException($"{index} has no 'weight_map' object.");
            var files = map.Select(kv => kv.Value?.GetValue<string>() ?? throw new FormatException($"{index}: '{kv.Key}' maps to no file."))
                .Distinct(StringComparer.Ordinal).ToList();
            foreach (string file in files)
            {
                if (file.Contains('/') || file.Contains('\\') || file.StartsWith('.'))
                {
                    throw new FormatException($"{index} names a shard outside the folder: '{file}'.");
                }

                if (!File.Exists(Path.Combine(directory, file)))
                {
                    throw new FileNotFoundException($"{index} names shard '{file}', which is not in {directory}.");
                }
            }

            return files.Select(f => Path.Combine(directory, f)).ToArray();
        }

        string single = Path.Combine(directory, ModelCheckpoint.WeightsFile);
        if (File.Exists(single)) return [single];
        throw new FileNotFoundException($"{directory} has neither {ModelCheckpoint.WeightsFile} nor {IndexFile}.");
    }

    /// <summary>The transformers name of a parameter of <see cref="LlamaModel"/>.</summary>
    public static string HfName(string parameterName) =>
        parameterName.StartsWith("lm_head.", StringComparison.Ordinal) ? parameterName : "model." + parameterName;

    /// <summary>Copies every weight of the folder into <paramref name="model"/>, tensor by tensor, converting to float32.</summary>
    public static void LoadWeights(LlamaModel model, string directory)
    {
        var parameters = model.named_parameters().ToDictionary(p => HfName(p.name), p => p.parameter, StringComparer.Ordinal);
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<string>();
        using var noGrad = no_grad();
        foreach (string file in WeightFiles(directory))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            SafeTensorsHeader header = SafeTensors.ReadHeader(stream, file);
            foreach (SafeTensorInfo info in header.Tensors)
            {
                if (Ignorable(info.Name, model.Config)) continue;
                if (!parameters.TryGetValue(info.Name, out var parameter))
                {
                    problems.Add($"unexpected tensor '{info.Name}' in {Path.GetFileName(file)}");
                    continue;
                }

                if (!WeightDTypes.Contains(info.DType))
                {
                    problems.Add($"'{info.Name}' is stored as {info.DType} (only F32, F16 and BF16 are read)");
                    continue;
                }

                if (!info.Shape.SequenceEqual(parameter.shape))
                {
                    problems.Add($"'{info.Name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", parameter.shape)}]");
                    continue;
                }

                if (!loaded.Add(info.Name))
                {
                    problems.Add($"'{info.Name}' appears twice");
                    continue;
                }

                using var stored = SafeTensors.ReadTensor(stream, header, info, file);
                parameter.copy_(stored);
            }
        }

        problems.AddRange(parameters.Keys.Where(name => !loaded.Contains(name)).Order(StringComparer.Ordinal).Select(name => $"missing tensor '{name}'"));
        if (problems.Count > 0)
        {
            throw new FormatException($"{directory}: the weights do not fit its config.json: {string.Join("; ", problems.Take(12))}"
                + (problems.Count > 12 ? $"; and {problems.Count - 12} more." : "."));
        }
    }

    /// <summary>
    /// Writes config.json and model.safetensors (float32, transformers names; no lm_head.weight when tied, as
    /// save_pretrained does).
    /// </summary>
    public static void Save(LlamaModel model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        var tensors = model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(HfName(p.name), p.parameter.detach())).ToList();
        SafeTensors.Save(Path.Combine(directory, ModelCheckpoint.WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(Path.Combine(directory, ModelCheckpoint.ConfigFile), model.Config.ToJson());
    }

    /// <summary>
    /// The folder's tokenizer: <c>tokenizer.json</c> when it is byte-level BPE, else the SentencePiece <c>tokenizer.model</c>
    /// (Llama 2 and Mistral ship both; their tokenizer.json is refused as not byte-level). The end id is the config's first eos;
    /// the begin token is the one the folder's Hugging Face tokenizer adds (<see cref="Orchestrator.Data.LlamaBeginToken"/>).
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither file.</exception>
    /// <exception cref="FormatException">A begin id the folder adds but does not name, or outside the vocabulary.</exception>
    /// <exception cref="NotSupportedException">Only a tokenizer.json of a kind not implemented, named.</exception>
    public static Tokenization.ITextTokenizer LoadTokenizer(string directory, LlamaConfig config)
    {
        int? end = config.EosTokenIds is { Count: > 0 } eos ? eos[0] : null;
        int? begin = Orchestrator.Data.LlamaBeginToken.Of(directory);
        if (begin is { } b && (b < 0 || b >= config.VocabSize))
        {
            throw new FormatException($"{directory}: the begin token id {b} is outside the model's {config.VocabSize} embeddings.");
        }

        bool hasJson = Tokenization.HfBpeTokenizer.ExistsIn(directory);
        bool hasModel = Tokenization.SentencePieceFileTokenizer.ExistsIn(directory);
        if (hasJson)
        {
            try
            {
                return Tokenization.HfBpeTokenizer.Load(Path.Combine(directory, Tokenization.HfBpeTokenizer.FileName), end, begin);
            }
            catch (NotSupportedException) when (hasModel)
            {
                // A SentencePiece-style tokenizer.json next to its tokenizer.model: read the model.
            }
        }

        if (hasModel) return Tokenization.SentencePieceFileTokenizer.Load(Path.Combine(directory, Tokenization.SentencePieceFileTokenizer.FileName), end, begin);
        throw new FileNotFoundException(
            $"{directory} has no tokenizer: expected {Tokenization.HfBpeTokenizer.FileName} (byte-level BPE) or {Tokenization.SentencePieceFileTokenizer.FileName} (SentencePiece).");
    }

    /// <summary>Tensors a checkpoint may carry that are not parameters: old rotary buffers, and a tied head's copy.</summary>
    private static bool Ignorable(string name, LlamaConfig config) =>
        RotaryBuffer().IsMatch(name) || (config.TieWordEmbeddings && name == "lm_head.weight");

    [GeneratedRegex(@"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")]
    private static partial Regex RotaryBuffer();
}
