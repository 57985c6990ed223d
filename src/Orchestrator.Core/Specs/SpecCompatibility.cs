using System.Text.Json;

namespace Orchestrator.Core.Specs;

/// <summary>
/// Whether a new version of a spec may extend an existing sweep: it may add seeds, subsamples, sizes or methods,
/// but everything that determines the existing cells (data, base model, training and decoding settings, the
/// manifest settings, the steps of existing sizes) must be unchanged.
/// </summary>
public static class SpecCompatibility
{
    /// <summary>Null when <paramref name="updated"/> only adds cells to <paramref name="existing"/>; otherwise the reasons.</summary>
    public static string? Explain(SweepSpec existing, SweepSpec updated)
    {
        var reasons = new List<string>();
        void Same<T>(string field, T a, T b)
        {
            if (JsonSerializer.Serialize(a) != JsonSerializer.Serialize(b))
            {
                reasons.Add($"{field} changed");
            }
        }

        if (existing.Name != updated.Name)
        {
            reasons.Add($"name changed ('{existing.Name}' → '{updated.Name}')");
        }

        Same("dataset", existing.Dataset, updated.Dataset);
        Same("model", existing.Model, updated.Model);
        Same("decoding", existing.Decoding, updated.Decoding);
        Same("selection", existing.Selection, updated.Selection);
        Same("grid.manifest_seed", existing.Grid.ManifestSeed, updated.Grid.ManifestSeed);
        Same("grid.nested", existing.Grid.Nested, updated.Grid.Nested);
        void SameTraining(string at, TrainingSpec t0, TrainingSpec t1)
        {
            Same(at + ".learning_rate", t0.LearningRate, t1.LearningRate);
            Same(at + ".batch_size", t0.BatchSize, t1.BatchSize);
            Same(at + ".warmup_steps", t0.WarmupSteps, t1.WarmupSteps);
            Same(at + ".eval_every", t0.EvalEvery, t1.EvalEvery);
            Same(at + ".weight_decay", t0.WeightDecay, t1.WeightDecay);
            Same(at + ".base_dropout", t0.BaseDropout, t1.BaseDropout);
            Same(at + ".loss", t0.Loss, t1.Loss);
            foreach (var size in existing.Grid.Sizes.Where(updated.Grid.Sizes.Contains))
            {
                if (t0.MaxStepsFor(size) != t1.MaxStepsFor(size))
                {
                    reasons.Add($"{at}.max_steps for size {size} changed ({t0.MaxStepsFor(size)} → {t1.MaxStepsFor(size)})");
                }
            }
        }

        SameTraining("training", existing.Training, updated.Training);
        static string Identity(MethodSpec m) => m.Name + "|" + JsonSerializer.Serialize(m.Options);
        foreach (var (m0, i) in existing.Methods.Select((m, i) => (m, i)))
        {
            if (updated.Methods.FirstOrDefault(n => Identity(n) == Identity(m0)) is { } m1)
            {
                SameTraining($"methods[{i}] ({m0.Name}) training", m0.TrainingOr(existing.Training), m1.TrainingOr(updated.Training));
                Same($"methods[{i}] ({m0.Name}) selection", m0.Selection, m1.Selection);
            }
        }

        var removed = new List<string>();
        removed.AddRange(existing.Grid.Sizes.Except(updated.Grid.Sizes).Select(s => $"size {s}"));
        removed.AddRange(existing.Grid.Seeds.Except(updated.Grid.Seeds).Select(s => $"seed {s}"));
        if (updated.Grid.Subsamples < existing.Grid.Subsamples)
        {
            removed.Add($"subsamples {updated.Grid.Subsamples}..{existing.Grid.Subsamples - 1}");
        }

        removed.AddRange(existing.Methods
            .Where(m => !updated.Methods.Any(n => Identity(n) == Identity(m)))
            .Select(m => $"method {m.Name}" + (m.Options.Count == 0 ? "" : " with its options")));
        removed.AddRange(existing.Dataset.Splits.Except(updated.Dataset.Splits).Select(s => $"split {s}"));
        if (removed.Count > 0)
        {
            reasons.Add("removed " + string.Join(", ", removed));
        }

        return reasons.Count == 0
            ? null
            : "extend may only add seeds, subsamples, sizes or methods; " + string.Join("; ", reasons) + " (submit it as a new sweep instead)";
    }
}
