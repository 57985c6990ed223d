using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.ChildTuning;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>Child-Tuning's gradient masks through the trainer's extension points.</summary>
[Collection(PeftCollection.Name)]
public sealed class ChildTuningTests(PeftTaskFixture fixture, ITestOutputHelper output)
{
    // Weight decay and clipping on, so that the masked decay and the hook's place after clipping are exercised too.
    private static readonly TrainingOptions Options = new(MaxSteps: 12, BatchSize: 5, LearningRate: 3e-3, WarmupSteps: 2, EvalEvery: 5, Seed: 4, WeightDecay: 0.1, MaxGradNorm: 1.0);

    private (TrainReport Report, Dictionary<string, Tensor> Weights) Train(string method, IReadOnlyDictionary<string, string>? options, TrainingOptions training)
    {
        var model = fixture.NewBase();
        using var m = PeftRegistry.Create(method, options);
        var report = new CausalLmTrainer(model, fixture.Tokenizer, m).Train(fixture.Task, fixture.Task.Take(4).ToList(), training);
        var weights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
        model.Dispose();
        return (report, weights);
    }

    [Fact]
    public void Child_tuning_F_with_p_1_equals_plain_finetune_step_by_step()
    {
        // Tolerance: 1e-6 absolute on every step's loss and every final weight (observed: bit-identical).
        var (f, fWeights) = Train("child-tuning-f", new Dictionary<string, string> { ["p"] = "1" }, Options);
        var (ft, ftWeights) = Train("finetune", null, Options);
        Assert.Equal(ft.StepLosses.Count, f.StepLosses.Count);
        for (int i = 0; i < ft.StepLosses.Count; i++)
        {
            Assert.True(Math.Abs(ft.StepLosses[i] - f.StepLosses[i]) <= 1e-6, $"step {i + 1}: {ft.StepLosses[i]} vs {f.StepLosses[i]}");
        }

        Assert.Equal(ft.DevLosses, f.DevLosses);
        Assert.Equal(ft.BestStep, f.BestStep);
        int identical = 0;
        foreach (var (name, w) in ftWeights)
        {
            Assert.True(fWeights[name].allclose(w, rtol: 0, atol: 1e-6), $"{name} differs");
            if (TestData.Identical(fWeights[name], w)) identical++;
        }

        output.WriteLine($"{identical}/{ftWeights.Count} tensors bit-identical; losses identical: {ft.StepLosses.SequenceEqual(f.StepLosses)}");
        foreach (var t in fWeights.Values.Concat(ftWeights.Values)) t.Dispose();
    }

    [Fact]
    public void Child_tuning_F_masks_are_seeded_by_the_trial_seed()
    {
        var options = new Dictionary<string, string> { ["p"] = "0.3" };
        var short4 = Options with { MaxSteps = 4, EvalEvery = 0 };
        var (a, aw) = Train("child-tuning-f", options, short4);
        var (b, bw) = Train("child-tuning-f", options, short4);
        var (c, cw) = Train("child-tuning-f", options, short4 with { Seed = 5 });
        var (ft, ftw) = Train("finetune", null, short4);
        Assert.Equal(a.StepLosses, b.StepLosses);
        Assert.All(aw, kv => Assert.True(TestData.Identical(kv.Value, bw[kv.Key]), kv.Key));
        Assert.NotEqual(a.StepLosses.Skip(1), ft.StepLosses.Skip(1));
        Assert.Contains(aw, kv => !TestData.Identical(kv.Value, cw[kv.Key]));
        foreach (var t in new[] { aw, bw, cw, ftw }.SelectMany(w => w.Values)) t.Dispose();
    }

    [Fact]
    public void Child_tuning_D_keeps_the_top_p_Fisher_entries_and_updates_only_them()
    {
        using var model = fixture.NewBase();
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
        using var method = (ChildTuningMethod)PeftRegistry.Create("child-tuning-d", new Dictionary<string, string> { ["p"] = "0.2" });
        var trainer = new CausalLmTrainer(model, fixture.Tokenizer, method);
        var training = Options with { BatchSize = 5, EvalEvery = 0 };
        trainer.Train(fixture.Task, [], training);
        var masks = method.ChildMasks!;

        // Independent Fisher estimate: Σ over the training set, in order, batches of 5, of the squared gradients.
        var parameters = model.parameters().ToList();
        var fresh = fixture.NewBase();
        var freshParameters = fresh.parameters().ToList();
        foreach (var p in freshParameters) p.requires_grad = true;
        fresh.train();
        var fisher = freshParameters.Select(p => zeros_like(p).DetachFromDisposeScope()).ToArray();
        for (int start = 0; start < fixture.Task.Count; start += 5)
        {
            using var scope = NewDisposeScope();
            foreach (var p in freshParameters) p.grad?.zero_();
            var encoded = fixture.Task.Skip(start).Take(5).Select(e => CausalLmFormat.Encode(fixture.Tokenizer, e.Source, e.Target, fixture.Config.Positions)).ToArray();
            using var batch = CausalLmFormat.Collate(encoded, fixture.Tokenizer.Pad);
            CausalLmFormat.Loss(fresh.forward(batch.InputIds), batch.Labels).backward();
            using var noGrad = no_grad();
            for (int i = 0; i < fisher.Length; i++) fisher[i].add_(freshParameters[i].grad!.square());
        }

        using (var scope = NewDisposeScope())
        {
            var all = cat(fisher.Select(f => f.flatten()).ToArray());
            long n = all.numel(), k = (long)Math.Ceiling(0.2 * n);
            float threshold = all.sort(descending: true).Values[k - 1].item<float>();
            long selected = masks.Sum(m => m.sum().item<long>());
            output.WriteLine($"child network: {selected} of {n} entries ({(double)selected / n:P2}), threshold {threshold:E3}");
            Assert.True(selected >= k && selected <= k + n / 1000, $"{selected} selected, expected about {k}");
            for (int i = 0; i < fisher.Length; i++)
            {
                Assert.True(TestData.Identical(masks[i], fisher[i].ge(threshold)), $"mask {i} differs from the independent Fisher estimate");
            }

            // Outside the child network nothing moved (not even by weight decay); inside, most entries did.
            var names = model.named_parameters().Select(p => p.name).ToList();
            long moved = 0;
            for (int i = 0; i < parameters.Count; i++)
            {
                var changed = parameters[i].detach().ne(before[names[i]]);
                Assert.False(changed.logical_and(masks[i].logical_not()).any().item<bool>(), $"{names[i]} changed outside the child network");
                moved += changed.sum().item<long>();
            }

            Assert.True(moved > selected / 2, $"only {moved} of {selected} child entries moved");
        }

        fresh.Dispose();
        foreach (var t in fisher.Concat(before.Values)) t.Dispose();
    }
}
