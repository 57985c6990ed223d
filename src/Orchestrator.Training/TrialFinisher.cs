using System.Diagnostics;
using System.Reflection;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Training.Decoding;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training;

/// <summary>
/// The end of every trial, alone or packed: decodes the evaluation set with the trained method (<c>greedy</c> or <c>beam</c>,
/// beam size from the cell, length penalty 1, max/min new tokens from the cell, newline tokens banned, cut at the first
/// end token), scores it with each metric and writes the provenance.
/// </summary>
internal sealed class TrialFinisher(TrialScorer scorer)
{
    private static readonly string CodeVersion =
        typeof(TrialRunner).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Decoding batch size (sources per batch; beams multiply it).</summary>
    public int DecodeBatchSize { get; set; } = GreedyDecoder.DefaultBatchSize;

    /// <param name="clock">Started when the trial started; <paramref name="setup"/> seconds of it went to loading.</param>
    public TrialOutcome Finish(CellDefinition cell, TrialData data, IPeftMethod method, TrialBase trialBase, TrainReport report,
        IReadOnlyList<string> metrics, string workerId, int attempt, Stopwatch clock, PeakMemorySampler memory, double setup,
        TrialPackingProvenance? packing, CancellationToken ct, IReadOnlyList<string>? dependencies = null)
    {
        CausalLm model = trialBase.Model;
        ITextTokenizer tokenizer = trialBase.Tokenizer;
        long trainable = method.CountParameters(model.Shape).Trainable;
        double trained = clock.Elapsed.TotalSeconds;

        var sources = data.Eval.Select(e => e.Source).ToList();
        var decoding = new DecodingOptions
        {
            MaxNewTokens = cell.Decoding.MaxNewTokens,
            MinNewTokens = cell.Decoding.MinNewTokens,
            MinLength = cell.Decoding.MinLength ?? 0,
            BeamSize = cell.Decoding.Strategy == TrialRunner.Beam ? cell.Decoding.BeamSize : 1,
            LengthPenalty = cell.Decoding.LengthPenalty ?? 1.0,
            Normalization = cell.Decoding.LengthNormalization switch
            {
                null or DecodingSpec.NormalizeNewTokens => LengthNormalization.NewTokens,
                DecodingSpec.NormalizeFullSequence => LengthNormalization.FullSequence,
                var other => throw new NotSupportedException($"cell {cell.Label}: unknown length normalisation '{other}' (known: {string.Join(", ", DecodingSpec.Normalizations)})"),
            },
            BannedTokenIds = TokenizerFiles.NewlineTokenIds(tokenizer),
            BatchSize = DecodeBatchSize,
        };
        IReadOnlyList<string> outputs = cell.Decoding.Strategy switch
        {
            TrialRunner.Greedy => GreedyDecoder.Decode(model, tokenizer, sources, decoding, method, ct),
            TrialRunner.Beam => BeamSearchDecoder.Decode(model, tokenizer, sources, decoding, method, ct),
            _ => throw new NotSupportedException($"cell {cell.Label}: unknown decoding strategy '{cell.Decoding.Strategy}' (known: {string.Join(", ", TrialRunner.DecodingStrategies)})"),
        };
        double decoded = clock.Elapsed.TotalSeconds;

        var references = data.Eval.Select(e => e.References).ToList();
        var scores = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var metric in metrics)
        {
            foreach (var (name, value) in scorer(metric, outputs, references))
            {
                scores[name] = value;
            }
        }

        double wall = clock.Elapsed.TotalSeconds;
        long peak = memory.Peak;
        var timings = new TrialTimings(setup, trained - setup, decoded - trained, wall - decoded);
        var provenance = new TrialProvenance(
            CodeVersion: CodeVersion,
            CellCodeVersion: cell.CodeVersion,
            DatasetHash: cell.Dataset.ContentHash,
            Split: cell.Split,
            ManifestHash: data.Manifest.Hash,
            BaseModelHash: cell.Model.ContentHash,
            Base: trialBase.Description,
            Model: model.Description,
            Method: cell.Method,
            MethodOptions: cell.MethodOptions,
            MethodOptionsEffective: method.Options,
            TrainableParameters: trainable,
            Training: cell.Training,
            Decoding: cell.Decoding,
            DecodingBannedTokens: decoding.BannedTokenIds.Count,
            Seed: cell.Seed,
            Worker: workerId,
            Device: TorchRuntime.Describe(),
            Attempt: attempt,
            WallSeconds: wall,
            Timings: TrialTimingsProvenance.Of(timings),
            PeakRssBytes: peak,
            TrainExamples: data.Train.Count,
            DevExamples: data.Dev.Count,
            EvalInputs: sources.Count,
            Steps: report.Steps,
            BestStep: report.BestStep,
            BestDevLoss: report.BestDevLoss,
            FinalTrainLoss: report.StepLosses.Count > 0 ? report.StepLosses[^1] : double.NaN,
            TrainSeconds: report.Seconds,
            TrainTokensPerSecond: report.TokensPerSecond,
            Packing: packing ?? TrialPackingProvenance.Alone,
            Dependencies: dependencies ?? [],
            ReusedTraining: cell.ReusesTraining);
        return new TrialOutcome(scores, outputs, provenance.ToJson(), wall, peak)
        {
            Timings = timings,
            Training = report,
            TrainableParameters = trainable,
        };
    }
}
