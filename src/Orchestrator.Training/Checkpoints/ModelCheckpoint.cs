using System.Text;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// A model folder in Hugging Face GPT-2 layout: <c>config.json</c> (Hugging Face GPT-2 keys), <c>model.safetensors</c>
/// (Hugging Face GPT-2 tensor names and layout; F32, F16 or BF16 on import, F32 on export) and the tokenizer: GPT-2 BPE
/// (<c>vocab.json</c> + <c>merges.txt</c>) or a small word-level vocabulary (<c>tokenizer.word-level.json</c>).
/// <para>
/// The weights are written as Hugging Face stores GPT-2: projection weights (<c>attn.c_attn</c>, <c>attn.c_proj</c>,
/// <c>mlp.c_fc</c>, <c>mlp.c_proj</c>) in Conv1D layout [in, out], i.e. transposed relative to our Linear layers, and no
/// <c>lm_head.weight</c> (tied to <c>wte</c>). <see cref="LoadWeights"/> accepts the variants of Hub checkpoints (an optional
/// <c>transformer.</c> prefix, <c>attn.bias</c>/<c>attn.masked_bias</c> buffers, a tied <c>lm_head.weight</c>), so it is the
/// base of the later Hugging Face import.
/// </para>
/// </summary>
public sealed class ModelCheckpoint : IDisposable
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string WordLevelTokenizerFile = "tokenizer.word-level.json";

    private static readonly string[] Conv1DSuffixes = [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"];

    private ModelCheckpoint(Gpt2Model model, Gpt2Config config, ITextTokenizer tokenizer)
    {
        Model = model;
        Config = config;
        Tokenizer = tokenizer;
    }

    public Gpt2Model Model { get; }

    public Gpt2Config Config { get; }

    public ITextTokenizer Tokenizer { get; }

    /// <summary>Writes the model folder (created if needed; existing files are replaced).</summary>
    /// <exception cref="NotSupportedException">A tokenizer without a file format (see <see cref="TokenizerFiles.Save"/>).</exception>
    public static void Save(Gpt2Model model, Gpt2Config config, ITextTokenizer tokenizer, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(directory);
        if (config != model.Config)
        {
            throw new ArgumentException($"The config ({config}) differs from the model's ({model.Config}).", nameof(config));
        }

        if (tokenizer.VocabSize > config.VocabSize)
        {
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} ids but the model only {config.VocabSize} embeddings.", nameof(tokenizer));
        }

        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJson(), new UTF8Encoding(false));
        TokenizerFiles.Save(tokenizer, directory);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            Tensor t = IsConv1D(name) ? parameter.detach().t().contiguous() : parameter.detach();
            tensors.Add(new(name, t.to_type(ScalarType.Float32)));
        }

        SafeTensors.Save(
            Path.Combine(directory, WeightsFile),
            tensors,
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "Orchestrator.Training" });
    }

    /// <summary>
    /// Loads a model folder (one written by <see cref="Save"/>, or a local Hugging Face GPT-2 checkpoint). Dispose the
    /// result to free the model.
    /// </summary>
    public static ModelCheckpoint Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"No {ConfigFile} in {directory}.", configPath);
        }

        Gpt2Config config = Gpt2Config.FromJson(File.ReadAllText(configPath, Encoding.UTF8));
        ITextTokenizer tokenizer = TokenizerFiles.Load(directory);
        if (tokenizer.VocabSize > config.VocabSize)
        {
            throw new FormatException($"{directory}: the tokenizer has {tokenizer.VocabSize} ids but config.json only {config.VocabSize} embeddings.");
        }

        var model = new Gpt2Model(config);
        try
        {
            LoadWeights(model, Path.Combine(directory, WeightsFile));
        }
        catch
        {
            model.Dispose();
            throw;
        }

        model.eval();
        return new ModelCheckpoint(model, config, tokenizer);
    }

    /// <summary>
    /// Copies the tensors of a GPT-2 safetensors file into <paramref name="model"/> (see <see cref="ReadWeights"/>). Every
    /// model parameter must be present with the right shape.
    /// </summary>
    /// <exception cref="FormatException">Missing, unexpected or mis-shaped tensors (all listed).</exception>
    public static void LoadWeights(Gpt2Model model, string safetensorsPath)
    {
        ArgumentNullException.ThrowIfNull(model);
        Dictionary<string, Tensor> weights = ReadWeights(safetensorsPath);
        try
        {
            CopyWeights(model, weights, safetensorsPath);
        }
        finally
        {
            foreach (Tensor t in weights.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Reads a GPT-2 safetensors file into our parameter names and layout, as float32 CPU tensors outside any DisposeScope
    /// (the caller disposes them): strips an optional <c>transformer.</c> prefix, skips the <c>attn.bias</c> and
    /// <c>attn.masked_bias</c> buffers, transposes Conv1D weights ([in, out] → [out, in]) and converts F16/BF16/F64 to F32.
    /// A <c>lm_head.weight</c> must equal <c>wte.weight</c> (the head is tied) and is dropped.
    /// </summary>
    /// <exception cref="FormatException">An untied or mis-shaped head.</exception>
    public static Dictionary<string, Tensor> ReadWeights(string safetensorsPath)
    {
        ArgumentNullException.ThrowIfNull(safetensorsPath);
        Dictionary<string, Tensor> loaded = SafeTensors.Load(safetensorsPath);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            Tensor? head = null;
            foreach (var (rawName, t) in loaded)
            {
                string name = rawName.StartsWith("transformer.", StringComparison.Ordinal) ? rawName["transformer.".Length..] : rawName;
                if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal))
                {
                    continue;
                }

                using var scope = NewDisposeScope();
                Tensor value = IsConv1D(name) && t.dim() == 2 ? t.t() : t;
                value = value.to_type(ScalarType.Float32).contiguous();
                if (ReferenceEquals(value, t)) value = t.clone();
                value = value.DetachFromDisposeScope();
                if (name == "lm_head.weight")
                {
                    head = value;
                    continue;
                }

                if (!result.TryAdd(name, value))
                {
                    value.Dispose();
                    throw new FormatException($"{safetensorsPath}: tensor '{name}' appears twice (with and without the 'transformer.' prefix).");
                }
            }

            if (head is not null)
            {
                using (head)
                {
                    if (!result.TryGetValue("wte.weight", out Tensor? wte) || !head.shape.SequenceEqual(wte.shape))
                    {
                        throw new FormatException($"{safetensorsPath}: lm_head.weight does not match wte.weight (an untied head is not supported).");
                    }

                    using var same = head.eq(wte).all();
                    if (!same.item<bool>())
                    {
                        throw new FormatException($"{safetensorsPath}: lm_head.weight differs from wte.weight (an untied head is not supported).");
                    }
                }
            }
        }
        catch
        {
            foreach (Tensor t in result.Values) t.Dispose();
            throw;
        }
        finally
        {
            foreach (Tensor t in loaded.Values) t.Dispose();
        }

        return result;
    }

    /// <summary>
    /// Copies <paramref name="weights"/> (our names and layout, e.g. from <see cref="ReadWeights"/>) into the model's
    /// parameters, converting the dtype. Every parameter must be present with its shape and no other tensor may be given.
    /// </summary>
    /// <exception cref="FormatException">Missing, unexpected or mis-shaped tensors (all listed); <paramref name="source"/> names them.</exception>
    public static void CopyWeights(CausalLm model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        var problems = new List<string>();
        var parameters = model.named_parameters().ToList();
        var expected = parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        foreach (string extra in weights.Keys.Where(k => !expected.Contains(k)))
        {
            problems.Add($"unexpected tensor '{extra}'");
        }

        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            if (!weights.TryGetValue(name, out Tensor? value))
            {
                problems.Add($"missing tensor '{name}'");
                continue;
            }

            if (!value.shape.SequenceEqual(parameter.shape))
            {
                var stored = IsConv1D(name) && value.dim() == 2 ? value.shape.Reverse() : value.shape;
                var wanted = IsConv1D(name) ? parameter.shape.Reverse() : parameter.shape;
                problems.Add($"'{name}' has shape [{string.Join(", ", stored)}], expected [{string.Join(", ", wanted)}]");
                continue;
            }

            parameter.copy_(value);
        }

        if (problems.Count > 0)
        {
            throw new FormatException($"{source} does not fit the model ({model.Description}): {string.Join("; ", problems)}.");
        }
    }

    private static bool IsConv1D(string name) => Conv1DSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal));

    public void Dispose() => Model.Dispose();
}
