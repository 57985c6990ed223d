using System.Collections.Concurrent;
using System.Diagnostics;
using Orchestrator.Core.Cells;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;

namespace Orchestrator.Training;

/// <summary>
/// Trains the cells of one pack group together on one shared frozen base (<see cref="PackedTrainer"/>), and chooses how
/// many to train at once (<see cref="Calibrate"/>). Each outcome is what a run alone would give.
/// </summary>
internal sealed class PackRunner(TrialInputs inputs, TrialFinisher finisher)
{
    private readonly ConcurrentDictionary<string, Lazy<PackCalibration>> _calibrations = new(StringComparer.Ordinal);

    /// <inheritdoc cref="TrialRunner.RunPack"/>
    public void Run(int capacity, Func<PackRequest?> next, Action<PackRequest, TrialOutcome?, Exception?> done, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(done);
        TorchRuntime.EnsureAvailable();
        PackRequest? first = next();
        if (first is null) return;
        string group = first.Cell.PackGroup;
        using var memory = new PeakMemorySampler();
        var members = new Dictionary<PackMember, (PackRequest Request, TrialData Data, Stopwatch Clock)>();
        TrialBase trialBase;
        try
        {
            trialBase = inputs.LoadBase(first.Cell, inputs.LoadData(first.Cell).Dataset, shareWeights: true, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            done(first, null, e);
            return;
        }

        using (trialBase.Model)
        {
            var trainer = new PackedTrainer(trialBase.Model, trialBase.Tokenizer);
            PackMember? Member(PackRequest request)
            {
                var started = Stopwatch.StartNew();
                try
                {
                    if (request.Cell.PackGroup != group)
                    {
                        throw new ArgumentException($"cell {request.Cell.Label} is not of this pack's group (data, base, method and options must match)");
                    }

                    TrialData data = inputs.LoadData(request.Cell);
                    int padLength = inputs.PadLength(request.Cell, data.Dataset, trialBase);
                    IPeftMethod method = PeftRegistry.Create(request.Cell.Method, request.Cell.MethodOptions, "method_options");
                    var member = new PackMember(request.Cell.Key, method, data.Train, data.Dev, TrialInputs.OptionsFor(request.Cell), request.Progress, request.Cancellation)
                    {
                        PadLength = padLength,
                    };
                    members[member] = (request, data, started);
                    return member;
                }
                catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidOperationException)
                {
                    done(request, null, e);
                    return null;
                }
            }

            PackMember? NextMember()
            {
                PackRequest? request = first ?? next();
                first = null;
                while (request is not null)
                {
                    if (Member(request) is { } member) return member;
                    request = next();
                }

                return null;
            }

            trainer.Run(capacity, NextMember, member =>
            {
                var (request, data, started) = members[member];
                members.Remove(member);
                using (member.Method)
                {
                    if (member.Error is not null)
                    {
                        done(request, null, member.Error);
                        return;
                    }

                    try
                    {
                        var packing = new TrialPackingProvenance(
                            Packed: true,
                            PackedWith: member.PackedWith.Order(StringComparer.Ordinal).ToArray(),
                            LargestPack: member.LargestPack,
                            Capacity: capacity,
                            PadLength: member.PadLength);
                        if (request.SaveTo is not null)
                        {
                            PeftCheckpoint.Save(member.Method, request.SaveTo);
                        }

                        // Setup 0: a member's data loading counts as training time (the base is the pack's, loaded once).
                        var outcome = finisher.Finish(request.Cell, data, member.Method, trialBase, member.Report!, request.Metrics, request.WorkerId,
                            request.Attempt, started, memory, setup: 0, packing, request.Cancellation);
                        done(request, outcome, null);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                    {
                        done(request, null, e);
                    }
                }
            }, ct);
        }
    }

    /// <inheritdoc cref="TrialRunner.CalibratePack"/>
    public PackCalibration Calibrate(CellDefinition cell, int max, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cell);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        // Lazy: two slots starting the same group at once calibrate it once.
        return _calibrations.GetOrAdd(cell.PackGroup + "|" + max, _ => new Lazy<PackCalibration>(() => Measure(cell, max, ct))).Value;
    }

    private PackCalibration Measure(CellDefinition cell, int max, CancellationToken ct)
    {
        TorchRuntime.EnsureAvailable();
        TrialData data = inputs.LoadData(cell);
        TrialBase trialBase = inputs.LoadBase(cell, data.Dataset, shareWeights: true, ct);
        var measured = new List<(int K, double StepSeconds)>();
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        using (trialBase.Model)
        {
            const int steps = 8;
            int chosen = 1;
            double best = 0;
            for (int k = 1; k <= max; k *= 2)
            {
                long before = Environment.WorkingSet;
                var stamps = new List<double>();
                var clock = Stopwatch.StartNew();
                var options = TrialInputs.OptionsFor(cell) with { MaxSteps = steps, WarmupSteps = 0, EvalEvery = 0 };
                int padLength = inputs.PadLength(cell, data.Dataset, trialBase);
                var queue = new Queue<PackMember>(Enumerable.Range(0, k).Select(i => new PackMember(
                    $"calibration-{i}", PeftRegistry.Create(cell.Method, cell.MethodOptions, "method_options"), data.Train, [],
                    options with { Seed = i }, i == 0 ? new StepClock(stamps, clock) : null, ct) { PadLength = padLength }));
                using var peak = new PeakMemorySampler();
                new PackedTrainer(trialBase.Model, trialBase.Tokenizer).Run(k, () => queue.Count > 0 ? queue.Dequeue() : null, m => m.Method.Dispose(), ct);
                // The median step (the first one, with its warm-up, excluded): robust to a busy moment on a shared machine.
                var intervals = stamps.Zip(stamps.Skip(1), (a, b) => b - a).Order().ToList();
                double stepSeconds = intervals.Count > 0 ? intervals[intervals.Count / 2] : clock.Elapsed.TotalSeconds / steps;
                measured.Add((k, stepSeconds));
                double throughput = k / stepSeconds;
                long perTrial = Math.Max(0, peak.Stop() - before) / k;
                if (throughput < best * 1.1) break;
                best = throughput;
                chosen = k;
                if (stepSeconds > 10 || Environment.WorkingSet + 2L * k * perTrial > available * 3 / 4) break;
            }

            return new PackCalibration(chosen, measured);
        }
    }

    private sealed class StepClock(List<double> stamps, Stopwatch clock) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => stamps.Add(clock.Elapsed.TotalSeconds);
    }
}
