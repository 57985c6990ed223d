using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>
/// A small pretrained base shared by the PEFT tests: a <c>tiny</c> model fully fine-tuned on "copy X" → X, "rev X" →
/// reversed X and, for sources without a mode word, either of the two at random (X over 5 symbols, 2–3 long). The methods'
/// task is to reverse sources without a mode word: a switch between behaviours the base already has, which every method
/// can learn in a few steps (PEFT on a random base would mean nothing). A <c>llama-tiny</c> base pretrained the same way
/// (on first use) stands for the Llama family.
/// </summary>
public sealed class PeftTaskFixture : IDisposable
{
    private const int Symbols = 5;
    private readonly List<(string Name, Tensor Value)> _weights = [];
    private readonly string _dependencyRoot = Path.Combine(Path.GetTempPath(), $"peft-fixture-{Guid.NewGuid():N}");
    private readonly Lazy<IReadOnlyList<PeftDependency>> _adapters;
    private readonly Lazy<IReadOnlyList<PeftDependency>> _llamaAdapters;
    private readonly Lazy<List<(string Name, Tensor Value)>> _llamaWeights;
    private readonly List<TrainingExample> _pretrain;

    public PeftTaskFixture()
    {
        Tokenizer = TestData.SymbolTokenizer("copy", "rev");
        Config = Gpt2Config.Preset("tiny", Tokenizer.VocabSize);
        var random = new Random(5);
        var pretrain = new List<TrainingExample>();
        for (int i = 0; i < 600; i++)
        {
            string[] symbols = RandomSymbols(random, 2 + random.Next(2));
            int mode = i % 3;
            bool reverse = mode == 1 || (mode == 2 && random.Next(2) == 1);
            string marker = mode == 0 ? "copy " : mode == 1 ? "rev " : "";
            pretrain.Add(new TrainingExample(marker + string.Join(" ", symbols), string.Join(" ", reverse ? symbols.Reverse() : symbols)));
        }

        Task = [];
        for (int i = 0; i < 12; i++)
        {
            string[] symbols = RandomSymbols(random, 2 + i % 2);
            Task.Add(new TrainingExample(string.Join(" ", symbols), string.Join(" ", symbols.Reverse())));
        }

        _pretrain = pretrain;
        LlamaConfig = LlamaConfig.Preset("llama-tiny", Tokenizer.VocabSize);
        _llamaWeights = new Lazy<List<(string, Tensor)>>(() => Pretrain(new LlamaModel(LlamaConfig, seed: 3)));
        _llamaAdapters = new Lazy<IReadOnlyList<PeftDependency>>(() => TrainSourceAdapters(Llama));
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var model = new Gpt2Model(Config, seed: 3);
        var report = new CausalLmTrainer(model, Tokenizer).Train(pretrain, [], new TrainingOptions(1200, 16, 3e-3, 30, 0, Seed: 1));
        PretrainLoss = report.StepLosses.TakeLast(20).Average();
        PretrainSeconds = started.Elapsed.TotalSeconds;
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            _weights.Add((name, p.detach().clone().DetachFromDisposeScope()));
        }

        _adapters = new Lazy<IReadOnlyList<PeftDependency>>(() => TrainSourceAdapters(Gpt2));
    }

    /// <summary>The two families' names in the matrix.</summary>
    public const string Gpt2 = "gpt2";

    public const string Llama = "llama";

    /// <summary>The Llama-family base's shape (llama-tiny with the task's vocabulary).</summary>
    public LlamaConfig LlamaConfig { get; }

    /// <summary>The shape of <paramref name="family"/>'s base.</summary>
    public ModelShape Shape(string family) => family == Llama ? LlamaConfig : Config;

    private List<(string, Tensor)> Pretrain(CausalLm model)
    {
        using (model)
        {
            new CausalLmTrainer(model, Tokenizer).Train(_pretrain, [], new TrainingOptions(1200, 16, 3e-3, 30, 0, Seed: 1));
            using var noGrad = no_grad();
            return model.named_parameters().Select(p => (p.name, p.parameter.detach().clone().DetachFromDisposeScope())).ToList();
        }
    }

    /// <summary>A fresh copy of <paramref name="family"/>'s pretrained base (eval mode).</summary>
    public CausalLm NewBase(string family)
    {
        if (family != Llama) return NewBase();
        var weights = _llamaWeights.Value; // pretrains on first use (with gradients: before the no_grad below)
        var model = new LlamaModel(LlamaConfig, seed: 99);
        using var noGrad = no_grad();
        var targets = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, value) in weights) targets[name].copy_(value);
        model.eval();
        return model;
    }

    public WordLevelTokenizer Tokenizer { get; }

    public Gpt2Config Config { get; }

    /// <summary>The methods' task: reverse sources without a mode word (12 examples, 2–3 symbols).</summary>
    public List<TrainingExample> Task { get; }

    public double PretrainLoss { get; }

    public double PretrainSeconds { get; }

    /// <summary>A fresh copy of the pretrained base (eval mode).</summary>
    public Gpt2Model NewBase()
    {
        var model = new Gpt2Model(Config, seed: 99);
        using var noGrad = no_grad();
        var targets = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, value) in _weights) targets[name].copy_(value);
        model.eval();
        return model;
    }

    /// <summary>Options that keep each method small on the tiny base (every registered method must be listed).</summary>
    public static IReadOnlyDictionary<string, string> TestOptions(string method) => method switch
    {
        "finetune" => new Dictionary<string, string>(),
        "ft-top2" => new Dictionary<string, string> { ["layers"] = "1" },
        "adapter" => new Dictionary<string, string> { ["bottleneck"] = "8" },
        "adapter-houlsby" => new Dictionary<string, string> { ["bottleneck"] = "8" },
        "adapter-parallel" => new Dictionary<string, string> { ["bottleneck"] = "16" },
        "prefix" => new Dictionary<string, string> { ["length"] = "1", ["hidden"] = "32" },
        "prompt" => new Dictionary<string, string> { ["length"] = "1" },
        "ptuning" => new Dictionary<string, string> { ["length"] = "1" },
        "ptuning-v2" => new Dictionary<string, string> { ["length"] = "1" },
        "lora" => new Dictionary<string, string>(),
        "bitfit" => new Dictionary<string, string>(),
        "ia3" => new Dictionary<string, string>(),
        "llama-adapter" => new Dictionary<string, string> { ["length"] = "4" },
        "proxy" => new Dictionary<string, string>(),
        "ln-tuning" => new Dictionary<string, string>(),
        "head-only" => new Dictionary<string, string> { ["bias"] = "true" },
        "child-tuning-f" => new Dictionary<string, string>(),
        "child-tuning-d" => new Dictionary<string, string>(),
        "bbt" => new Dictionary<string, string> { ["length"] = "1", ["dim"] = "16", ["popsize"] = "6", ["budget"] = "480" }, // ≤ 80 generations
        "adapter-fusion" => new Dictionary<string, string> { ["bottleneck"] = "8" }, // fuses SourceAdapters (adapter, bottleneck 8)
        _ => throw new ArgumentException($"No test options for method '{method}': add it to {nameof(PeftTaskFixture)}.{nameof(TestOptions)}."),
    };

    /// <summary>Learning rate of each method on the task (parameter-efficient methods want larger ones).</summary>
    public static double LearningRate(string method, string family = Gpt2) => (method, family) switch
    {
        ("ptuning", Llama) => 3e-2,
        _ => Gpt2LearningRate(method),
    };

    private static double Gpt2LearningRate(string method) => method switch
    {
        "finetune" or "proxy" or "child-tuning-f" or "child-tuning-d" => 3e-3,
        "ln-tuning" or "head-only" => 1e-1,
        "prompt" or "ia3" => 5e-2,
        "bitfit" or "llama-adapter" or "ptuning-v2" => 1e-1,
        _ => 1e-2,
    };

    public static IPeftMethod Create(string method) => PeftRegistry.Create(method, TestOptions(method));

    /// <summary>
    /// The dependencies a method of the matrix needs (empty for most): for <c>adapter-fusion</c>, <see cref="SourceAdapters"/>.
    /// </summary>
    public IReadOnlyList<PeftDependency> DependenciesOf(string method, string family = Gpt2) =>
        method != "adapter-fusion" ? [] : family == Llama ? _llamaAdapters.Value : SourceAdapters;

    /// <summary>A preparation context for <paramref name="method"/> with its <see cref="DependenciesOf"/>.</summary>
    public PeftContext Context(string method, long seed, string family = Gpt2) =>
        new(seed, Tokenizer) { Dependencies = DependenciesOf(method, family) };

    /// <summary>A trainer on <paramref name="model"/> that passes the method's <see cref="DependenciesOf"/>.</summary>
    public CausalLmTrainer Trainer(CausalLm model, IPeftMethod method) =>
        new(model, Tokenizer, method) { Dependencies = DependenciesOf(method.Name, model.Shape.FamilyName) };

    /// <summary>
    /// Two <c>adapter</c> checkpoints (bottleneck 8, as <see cref="TestOptions"/>) trained on this base, as cells of an earlier
    /// stage would be (trained once, on first use; the folders live until the fixture is disposed): <c>reverse</c> learned the
    /// methods' task, <c>copy</c> learned to copy the same kind of sources.
    /// </summary>
    public IReadOnlyList<PeftDependency> SourceAdapters => _adapters.Value;

    private IReadOnlyList<PeftDependency> TrainSourceAdapters(string family)
    {
        var random = new Random(17);
        var copy = new List<TrainingExample>();
        for (int i = 0; i < 12; i++)
        {
            string source = string.Join(" ", RandomSymbols(random, 2 + i % 2));
            copy.Add(new TrainingExample(source, source));
        }

        var dependencies = new List<PeftDependency>();
        foreach (var (cell, data) in new[] { ("reverse", Task), ("copy", copy) })
        {
            using var model = NewBase(family);
            using var method = Create("adapter");
            new CausalLmTrainer(model, Tokenizer, method).Train(data, [], new TrainingOptions(40, 12, 1e-2, 4, 0, Seed: 3));
            string directory = Path.Combine(_dependencyRoot, family, cell);
            PeftCheckpoint.Save(method, directory);
            dependencies.Add(new PeftDependency(cell, directory));
        }

        return dependencies;
    }

    private static string[] RandomSymbols(Random random, int count) =>
        Enumerable.Range(0, count).Select(_ => TestData.Symbols[random.Next(Symbols)]).ToArray();

    public void Dispose()
    {
        foreach (var (_, t) in _weights) t.Dispose();
        if (_llamaWeights.IsValueCreated) foreach (var (_, t) in _llamaWeights.Value) t.Dispose();
        if (Directory.Exists(_dependencyRoot)) Directory.Delete(_dependencyRoot, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class PeftCollection : ICollectionFixture<PeftTaskFixture>
{
    public const string Name = "peft";
}
