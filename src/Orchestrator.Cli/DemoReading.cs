using System.Globalization;
using Orchestrator.Abstractions;
using Orchestrator.Core.Aggregation;
using Orchestrator.Core.Specs;
using Orchestrator.Grains;
using Orchestrator.Training.Models;

namespace Orchestrator.Cli;

/// <summary>
/// The paragraph <c>demo</c> prints under its table (<see cref="StudyReading"/>): the context comes from the spec, the numbers
/// from the sweep's results grain (its points and the paired comparison of every two methods), as <c>results</c> reads them.
/// </summary>
internal static class DemoReading
{
    /// <summary>What the demo's table does not show, from its spec.</summary>
    public static ReadingContext Context(SweepSpec spec) => new(
        spec.Grid.Subsamples * spec.Grid.Seeds.Count,
        spec.Dataset.EvalLimit,
        Base(spec.Model),
        SettingsSelected: spec.Methods.All(m => m.Selection is not null),
        "The study that answers the paper's question, with every method at 50 to 500 examples on E2E and WebNLG, is docs/study.md.");

    /// <summary>The paragraph for <paramref name="metric"/>, grouped by dataset, split, method and size.</summary>
    public static async Task<string> ReadAsync(IGrainFactory grains, string sweepId, string metric, ReadingContext context)
    {
        var grain = grains.GetGrain<IResultsGrain>(sweepId);
        var results = await grain.GetAsync();
        var points = PointAggregation.Summarize(results.Points.Select(p => p.ToSums()), PointKeys.All, metric);
        var methods = points.Select(p => p.Method).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var comparisons = new List<(string, string, IReadOnlyList<PairedSummary>)>();
        for (int i = 0; i < methods.Count; i++)
        {
            for (int j = i + 1; j < methods.Count; j++)
            {
                var pairs = await grain.GetPairsAsync(metric, "method", methods[i], methods[j]);
                comparisons.Add((methods[i], methods[j], PairedComparison.CompareMethods(pairs.Pairs.Select(p => p.ToObservation()))));
            }
        }

        return StudyReading.Describe(metric, points, comparisons, context);
    }

    /// <summary>The base in a few words: its shape and how it was pretrained, or the checkpoint it was loaded from.</summary>
    internal static string Base(ModelSpec model)
    {
        if (model.Path is { } path)
        {
            return $"the checkpoint {Path.GetFileName(Path.TrimEndingDirectorySeparator(path))}";
        }

        string preset = model.Preset ?? "tiny";
        ModelShape shape = LlamaConfig.IsPreset(preset) ? LlamaConfig.Preset(preset) : Gpt2Config.Preset(preset);
        string form = string.Create(CultureInfo.InvariantCulture, $"the {preset} shape ({shape.Layers} layers, width {shape.Width})");
        if (model.Pretrain is not { } pretrain)
        {
            return form + " randomly initialised";
        }

        string corpus = pretrain.Corpus == PretrainSpec.SyntheticCorpus ? "generated restaurant text" : Path.GetFileName(pretrain.Corpus);
        return form + string.Create(CultureInfo.InvariantCulture, $" pretrained for {pretrain.Steps:N0} steps on {corpus}");
    }
}
