using System.Text;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// A model folder: <c>config.json</c> (Hugging Face GPT-2 keys), <c>model.safetensors</c> (F32, Hugging Face GPT-2 tensor
/// names and layout) and <c>tokenizer.word-level.json</c>.
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
    /// <exception cref="NotSupportedException">The tokenizer is not a <see cref="WordLevelTokenizer"/> (the only one with a file format so far).</exception>
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

        if (tokenizer is not WordLevelTokenizer wordLevel)
        {
            throw new NotSupportedException($"Saving a {tokenizer.GetType().Name} is not supported yet; only {nameof(WordLevelTokenizer)}.");
        }

        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJson(), new UTF8Encoding(false));
        wordLevel.Save(Path.Combine(directory, WordLevelTokenizerFile));

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

    /// <summary>Loads a folder written by <see cref="Save"/>. Dispose the result to free the model.</summary>
    public static ModelCheckpoint Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string configPath = Path.Combine(directory, ConfigFile);
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"No {ConfigFile} in {directory}.", configPath);
        }

        Gpt2Config config = Gpt2Config.FromJson(File.ReadAllText(configPath, Encoding.UTF8));
        string tokenizerPath = Path.Combine(directory, WordLevelTokenizerFile);
        if (!File.Exists(tokenizerPath))
        {
            throw new FileNotFoundException($"No {WordLevelTokenizerFile} in {directory} (other tokenizers are not supported yet).", tokenizerPath);
        }

        var tokenizer = WordLevelTokenizer.Load(tokenizerPath);
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
    /// Copies the tensors of a GPT-2 safetensors file into <paramref name="model"/>: strips an optional <c>transformer.</c>
    /// prefix, skips <c>attn.bias</c>, <c>attn.masked_bias</c> and a tied <c>lm_head.weight</c>, transposes Conv1D weights.
    /// Every model parameter must be present with the right shape.
    /// </summary>
    /// <exception cref="FormatException">Missing, unexpected or mis-shaped tensors (all listed).</exception>
    public static void LoadWeights(Gpt2Model model, string safetensorsPath)
    {
        ArgumentNullException.ThrowIfNull(model);
        Dictionary<string, Tensor> loaded = SafeTensors.Load(safetensorsPath);
        try
        {
            var byName = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (rawName, t) in loaded)
            {
                string name = rawName.StartsWith("transformer.", StringComparison.Ordinal) ? rawName["transformer.".Length..] : rawName;
                if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal))
                {
                    continue;
                }

                byName[name] = t;
            }

            var problems = new List<string>();
            var parameters = model.named_parameters().ToList();
            var expected = parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal);
            foreach (string extra in byName.Keys.Where(k => !expected.Contains(k) && k != "lm_head.weight"))
            {
                problems.Add($"unexpected tensor '{extra}'");
            }

            using var noGrad = no_grad();
            foreach (var (name, parameter) in parameters)
            {
                if (!byName.TryGetValue(name, out Tensor? source))
                {
                    problems.Add($"missing tensor '{name}'");
                    continue;
                }

                using var scope = NewDisposeScope();
                Tensor value = IsConv1D(name) && source.dim() == 2 ? source.t() : source;
                if (!value.shape.SequenceEqual(parameter.shape))
                {
                    problems.Add($"'{name}' has shape [{string.Join(", ", source.shape)}], expected [{string.Join(", ", IsConv1D(name) ? parameter.shape.Reverse() : parameter.shape)}]");
                    continue;
                }

                parameter.copy_(value);
            }

            if (byName.TryGetValue("lm_head.weight", out Tensor? head) && !head.shape.SequenceEqual(model.TokenEmbeddings.shape))
            {
                problems.Add("lm_head.weight does not match wte.weight (an untied head is not supported)");
            }

            if (problems.Count > 0)
            {
                throw new FormatException($"{safetensorsPath} does not fit the model ({model.Config}): {string.Join("; ", problems)}.");
            }
        }
        finally
        {
            foreach (Tensor t in loaded.Values) t.Dispose();
        }
    }

    private static bool IsConv1D(string name) => Conv1DSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal));

    public void Dispose() => Model.Dispose();
}
