using System.Globalization;

namespace Orchestrator.Core.Specs;

/// <summary>
/// Leakage-free hyper-parameter selection (<c>selection:</c>, at the top level for every method of the spec's own stage, or
/// per method, which replaces the top-level candidates for that method): candidate values of named training settings and
/// method options (<c>options.NAME</c>), tried on the first <see cref="Subsamples"/> subsamples × first <see cref="Seeds"/>
/// seeds of every grid size, and chosen by the dev loss (<see cref="By"/>; never the evaluation split). The grid then runs
/// with each method's chosen values.
/// </summary>
/// <param name="Candidates">Setting → candidate values (canonical strings), in the spec's order.</param>
/// <param name="Subsamples">How many subsamples (0 .. n−1) the selection cells use (default 1).</param>
/// <param name="Seeds">How many of the grid's seeds (the first n) the selection cells use (default 1).</param>
/// <param name="PerSize">Choose separately for each training-set size (default false: one choice over all sizes).</param>
/// <param name="By">The criterion: <see cref="ByDevLoss"/>, the best step's dev loss (token mean).</param>
public sealed record SelectionSpec(
    IReadOnlyDictionary<string, IReadOnlyList<string>> Candidates,
    int Subsamples = 1,
    int Seeds = 1,
    bool PerSize = false,
    string By = SelectionSpec.ByDevLoss)
{
    public const string ByDevLoss = "dev_loss";

    /// <summary>The prefix of a method option's name among the candidates (<c>options.r</c>).</summary>
    public const string OptionPrefix = "options.";

    /// <summary>Keys of the block that are not candidates.</summary>
    public static IReadOnlyList<string> ControlKeys { get; } = ["subsamples", "seeds", "per_size", "by"];

    /// <summary>The training settings that may have candidates.</summary>
    public static IReadOnlyList<string> TrainingSettings { get; } =
        ["learning_rate", "batch_size", "max_steps", "warmup_steps", "weight_decay", "base_dropout", "loss"];

    /// <summary>
    /// Every combination of one value per setting (the Cartesian product, the first setting varying slowest), each as
    /// setting → value; the number of selection cells per size × subsample × seed.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Combinations()
    {
        IEnumerable<SortedDictionary<string, string>> all = [new SortedDictionary<string, string>(StringComparer.Ordinal)];
        foreach (var (key, values) in Candidates)
        {
            all = all.SelectMany(c => values.Select(v => new SortedDictionary<string, string>(c, StringComparer.Ordinal) { [key] = v })).ToList();
        }

        return all.Select(c => (IReadOnlyDictionary<string, string>)c).ToList();
    }

    /// <summary>
    /// <paramref name="method"/> with the settings of <paramref name="combination"/>: training values over its own training
    /// (or <paramref name="sweepTraining"/>), option values over its options.
    /// </summary>
    public static MethodSpec Apply(MethodSpec method, TrainingSpec sweepTraining, IReadOnlyDictionary<string, string> combination)
    {
        var training = method.TrainingOr(sweepTraining);
        var options = new SortedDictionary<string, string>(method.Options.ToDictionary(), StringComparer.Ordinal);
        bool trainingChanged = false;
        foreach (var (key, value) in combination)
        {
            if (key.StartsWith(OptionPrefix, StringComparison.Ordinal))
            {
                options[key[OptionPrefix.Length..]] = value;
                continue;
            }

            trainingChanged = true;
            training = key switch
            {
                "learning_rate" => training with { LearningRate = double.Parse(value, CultureInfo.InvariantCulture) },
                "batch_size" => training with { BatchSize = int.Parse(value, CultureInfo.InvariantCulture) },
                "max_steps" => training with
                {
                    MaxStepsBySize = training.MaxStepsBySize.Keys.ToDictionary(s => s, _ => int.Parse(value, CultureInfo.InvariantCulture)),
                },
                "warmup_steps" => training with { WarmupSteps = int.Parse(value, CultureInfo.InvariantCulture) },
                "weight_decay" => training with { WeightDecay = double.Parse(value, CultureInfo.InvariantCulture) },
                "base_dropout" => training with { BaseDropout = value },
                "loss" => training with { Loss = value },
                _ => throw new ArgumentException($"'{key}' is not a setting selection can vary", nameof(combination)),
            };
        }

        return method with { Options = options, Training = trainingChanged ? training : method.Training };
    }

    /// <summary>A short label of a combination, e.g. <c>learning_rate=0.001 options.r=8</c>.</summary>
    public static string Label(IReadOnlyDictionary<string, string> combination) =>
        string.Join(" ", combination.Select(kv => $"{kv.Key}={kv.Value}"));
}
