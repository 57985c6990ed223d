using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Packing;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.AdapterFusion;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>AdapterFusion over the fixture's two trained adapters (<see cref="PeftTaskFixture.SourceAdapters"/>).</summary>
[Collection(PeftCollection.Name)]
public sealed class AdapterFusionTests(PeftTaskFixture fixture, ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"peft-fusion-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static IPeftMethod Fusion(Dictionary<string, string>? options = null) =>
        PeftRegistry.Create(AdapterFusionMethod.MethodName, options ?? new Dictionary<string, string> { ["bottleneck"] = "8" });

    private PeftContext Context(IReadOnlyList<PeftDependency> dependencies) => new(5, fixture.Tokenizer) { Dependencies = dependencies };

    private static Dictionary<string, Tensor> Clone(IEnumerable<KeyValuePair<string, Tensor>> tensors) =>
        tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);

    [Fact]
    public void Training_changes_only_the_fusion_weights_and_lowers_the_loss()
    {
        using var model = fixture.NewBase();
        var baseBefore = Clone(model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        using var method = Fusion();
        Assert.IsNotAssignableFrom<IPackableMethod>(method);
        var trainer = fixture.Trainer(model, method);
        var declared = method.Prepare(model, Context(fixture.SourceAdapters));
        var stored = method.StoredTensors();
        // The trainable parameters are exactly the fusion tensors (the stored tensors under h.*); the sources are frozen.
        var fusion = stored.Where(kv => kv.Key.StartsWith("h.", StringComparison.Ordinal)).ToList();
        Assert.Equal(fusion.Count, declared.Count);
        Assert.All(fusion, kv => Assert.Contains(declared, p => ReferenceEquals(p, kv.Value)));
        Assert.All(stored.Where(kv => kv.Key.StartsWith("source.", StringComparison.Ordinal)), kv => Assert.False(kv.Value.requires_grad, kv.Key));
        var fusionBefore = Clone(fusion);

        double before = trainer.EvaluateLoss(fixture.Task);
        var report = trainer.Train(fixture.Task, [], new TrainingOptions(MaxSteps: 40, BatchSize: 12, LearningRate: 1e-2, WarmupSteps: 4, EvalEvery: 0, Seed: 2));
        double after = trainer.EvaluateLoss(fixture.Task);
        output.WriteLine($"loss at initialisation {before:F4} -> {after:F4} after 40 steps (first step {report.StepLosses[0]:F4})");
        Assert.True(after < 0.5 * before, $"loss {before} -> {after}");

        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(TestData.Identical(baseBefore[name], p), $"base {name} changed");
        }

        // Each source is bit-identical to the adapter checkpoint it came from.
        for (int n = 0; n < fixture.SourceAdapters.Count; n++)
        {
            var source = SafeTensors.Load(Path.Combine(fixture.SourceAdapters[n].Directory, PeftCheckpoint.WeightsFile));
            var prefix = $"source.{n}.";
            var kept = method.StoredTensors().Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Assert.Equal(source.Keys.Order(StringComparer.Ordinal), kept.Select(kv => kv.Key[prefix.Length..]).Order(StringComparer.Ordinal));
            Assert.All(kept, kv => Assert.True(TestData.Identical(source[kv.Key[prefix.Length..]], kv.Value), $"{kv.Key} changed"));
            foreach (var t in source.Values) t.Dispose();
        }

        foreach (var (name, t) in method.StoredTensors().Where(kv => kv.Key.EndsWith(".weight", StringComparison.Ordinal) && kv.Key.StartsWith("h.", StringComparison.Ordinal)))
        {
            Assert.False(TestData.Identical(fusionBefore[name], t), $"{name} did not train");
        }

        foreach (var t in baseBefore.Values.Concat(fusionBefore.Values)) t.Dispose();
    }

    /// <summary>Σ over layers of ‖I − W_V‖²_F, computed in double from the stored value weights.</summary>
    private static double DistanceToIdentity(IPeftMethod method) =>
        method.StoredTensors().Where(kv => kv.Key.EndsWith(".fusion.value.weight", StringComparison.Ordinal))
            .Sum(kv =>
            {
                using var scope = NewDisposeScope();
                long d = kv.Value.shape[0];
                float[] w = kv.Value.detach().cpu().data<float>().ToArray();
                double sum = 0;
                for (long i = 0; i < d; i++)
                {
                    for (long j = 0; j < d; j++)
                    {
                        double x = (i == j ? 1.0 : 0.0) - w[(i * d) + j];
                        sum += x * x;
                    }
                }

                return sum;
            });

    [Fact]
    public void The_value_regulariser_is_lambda_times_the_squared_distance_to_the_identity_and_keeps_W_V_near_it()
    {
        using (var model = fixture.NewBase())
        using (var method = Fusion(new() { ["bottleneck"] = "8", ["regularization"] = "0.5" }))
        {
            Assert.Equal("0.01", Fusion().Options["regularization"]);
            Assert.Equal("0", Fusion(new() { ["value_init"] = "normal" }).Options["regularization"]);
            Assert.Equal("0.5", Fusion(new() { ["value_init"] = "normal", ["regularization"] = "0.5" }).Options["regularization"]);
            method.Prepare(model, Context(fixture.SourceAdapters));
            var values = method.StoredTensors().Where(kv => kv.Key.EndsWith(".fusion.value.weight", StringComparison.Ordinal)).Select(kv => kv.Value).ToList();
            Assert.Equal(fixture.Config.Layers, values.Count);
            using var generator = new Generator(8);
            using (no_grad())
            {
                foreach (var w in values)
                {
                    using var delta = empty_like(w).normal_(0, 0.1, generator);
                    using var identity = eye(w.shape[0]);
                    w.copy_(identity + delta);
                }
            }

            // λ·Σ‖I − W_V‖² against the same sum done element by element in double.
            double expected = 0.5 * DistanceToIdentity(method);
            using var penalty = method.RegularizationLoss()!;
            output.WriteLine($"penalty {penalty.item<float>():F6}, by hand {expected:F6}");
            Assert.Equal(expected, penalty.item<float>(), expected * 1e-5);

            // Its gradient is 2λ(W_V − I).
            penalty.backward();
            foreach (var w in values)
            {
                using var identity = eye(w.shape[0]);
                using var gradient = (w.detach() - identity) * 1.0;
                Assert.True(w.grad!.allclose(gradient, rtol: 1e-5, atol: 1e-7), "gradient of the penalty");
            }
        }

        using (var method = Fusion(new() { ["bottleneck"] = "8", ["regularization"] = "0" }))
        using (var model = fixture.NewBase())
        {
            method.Prepare(model, Context(fixture.SourceAdapters));
            Assert.Null(method.RegularizationLoss());
        }

        // Trained the same way, a strong penalty keeps W_V much nearer the identity than none does; the reported losses stay the
        // language-model loss (the first step, before any update, is the same with and without the penalty).
        (double Distance, double FirstLoss) TrainWith(string lambda)
        {
            using var model = fixture.NewBase();
            using var method = Fusion(new() { ["bottleneck"] = "8", ["regularization"] = lambda, ["value_init"] = "identity" });
            var trainer = fixture.Trainer(model, method);
            method.Prepare(model, Context(fixture.SourceAdapters));
            var report = trainer.Train(fixture.Task, [], new TrainingOptions(MaxSteps: 30, BatchSize: 12, LearningRate: 1e-2, WarmupSteps: 0, EvalEvery: 0, Seed: 2));
            return (DistanceToIdentity(method), report.StepLosses[0]);
        }

        var free = TrainWith("0");
        var held = TrainWith("10");
        output.WriteLine($"Σ‖I − W_V‖² after 30 steps: λ = 0 → {free.Distance:F4}, λ = 10 → {held.Distance:F4}; first-step loss {free.FirstLoss:F6} / {held.FirstLoss:F6}");
        Assert.True(held.Distance < 0.25 * free.Distance, $"λ = 10 left {held.Distance}, λ = 0 {free.Distance}");
        Assert.Equal(free.FirstLoss, held.FirstLoss, 1e-6);
    }

    /// <summary>o = h + W_up·ReLU(W_down·LN(h) + b_d) + b_u, written out (LayerNorm with the biased variance, as torch).</summary>
    private static Tensor AdapterByHand(IReadOnlyDictionary<string, Tensor> stored, string site, Tensor h, double eps)
    {
        var mean = h.mean(new long[] { -1 }, keepdim: true);
        var variance = (h - mean).pow(2).mean(new long[] { -1 }, keepdim: true);
        var normed = (h - mean) / (variance + eps).sqrt() * stored[$"{site}.ln.weight"] + stored[$"{site}.ln.bias"];
        var down = (normed.matmul(stored[$"{site}.down.weight"].t()) + stored[$"{site}.down.bias"]).relu();
        return h + down.matmul(stored[$"{site}.up.weight"].t()) + stored[$"{site}.up.bias"];
    }

    [Fact]
    public void At_initialisation_the_block_output_follows_the_formula_by_hand()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = fixture.NewBase();
        using var method = Fusion();
        method.Prepare(model, Context(fixture.SourceAdapters));
        var stored = method.StoredTensors().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        long d = fixture.Config.Width;
        using var generator = new Generator(21);
        var h = empty(2, 3, d).normal_(0, 1, generator);

        // W_V: identity with 1e-6 off the diagonal, bias 0; W_Q and W_K ~ N(0, 0.02), biases 0.
        var value = stored["h.0.fusion.value.weight"];
        Assert.True(TestData.Identical(value.diagonal(), ones(d)));
        Assert.All(value.masked_select(eye(d).logical_not()).data<float>().ToArray(), x => Assert.Equal((float)AdapterFusionMethod.ValueOffDiagonal, x));
        Assert.Equal(0f, stored["h.0.fusion.value.bias"].abs().max().item<float>());
        Assert.InRange(stored["h.0.fusion.query.weight"].std().item<float>(), 0.017f, 0.023f);

        for (int layer = 0; layer < fixture.Config.Layers; layer++)
        {
            var outputs = Enumerable.Range(0, 2).Select(n => AdapterByHand(stored, $"source.{n}.h.{layer}.adapter", h, fixture.Config.LayerNormEps)).ToArray();
            Tensor W(string name) => stored[$"h.{layer}.fusion.{name}.weight"];
            Tensor B(string name) => stored[$"h.{layer}.fusion.{name}.bias"];
            var q = h.matmul(W("query").t()) + B("query");
            var scores = outputs.Select(o => (q * (o.matmul(W("key").t()) + B("key"))).sum(-1)).ToArray(); // [2, 3] each
            var total = scores.Select(s => s.exp()).Aggregate((a, b) => a + b);
            var expected = zeros_like(h);
            for (int n = 0; n < 2; n++)
            {
                var weight = (scores[n].exp() / total).unsqueeze(-1);
                expected += weight * (outputs[n].matmul(W("value").t()) + B("value"));
            }

            var actual = method.Hooks!.Block(layer, h, training: false);
            double difference = (actual - expected).abs().max().item<float>();
            output.WriteLine($"layer {layer}: max |fusion − by hand| = {difference:E2}; softmax weights of source 0: " +
                string.Join(" ", (scores[0].exp() / total).flatten().data<float>().Select(x => x.ToString("F3", System.Globalization.CultureInfo.InvariantCulture))));
            Assert.True(difference < 1e-5, $"layer {layer}: {difference}");

            // With W_Q = 0 and b_Q = 0 every score is 0: the weights are exactly 1/2 and the output is the plain average m of the
            // two adapter outputs, through W_V: m + 1e-6·(Σ_j m_j − m).
            using (var keepQuery = W("query").clone())
            {
                W("query").zero_();
                var mean = (outputs[0] + outputs[1]) / 2;
                var average = mean + AdapterFusionMethod.ValueOffDiagonal * (mean.sum(-1, keepdim: true) - mean);
                var uniform = method.Hooks!.Block(layer, h, training: false);
                Assert.True(uniform.allclose(average, rtol: 0, atol: 1e-5), $"layer {layer}: the uniform case is not the average");
                W("query").copy_(keepQuery);
            }
        }
    }

    [Fact]
    public void A_checkpoint_rebuilds_the_fusion_without_the_dependency_folders()
    {
        // Private copies of the dependency folders, deleted before loading.
        var dependencies = fixture.SourceAdapters.Select((d, n) =>
        {
            string copy = Path.Combine(_dir, "deps", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Directory.CreateDirectory(copy);
            foreach (string file in Directory.GetFiles(d.Directory)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            return new PeftDependency(d.CellKey, copy);
        }).ToList();
        using var model = fixture.NewBase();
        using var method = Fusion(new Dictionary<string, string> { ["bottleneck"] = "8", ["temperature"] = "2" });
        new CausalLmTrainer(model, fixture.Tokenizer, method) { Dependencies = dependencies }
            .Train(fixture.Task, [], new TrainingOptions(MaxSteps: 8, BatchSize: 6, LearningRate: 1e-2, WarmupSteps: 0, EvalEvery: 0, Seed: 1));
        string saved = Path.Combine(_dir, "fusion");
        PeftCheckpoint.Save(method, saved);
        Directory.Delete(Path.Combine(_dir, "deps"), recursive: true);

        using var fresh = fixture.NewBase();
        using var loaded = PeftCheckpoint.Load(fresh, saved);
        Assert.Equal(method.Options, loaded.Options);
        Assert.Equal(method.StoredTensors().Select(kv => kv.Key), loaded.StoredTensors().Select(kv => kv.Key));
        Assert.All(loaded.StoredTensors(), kv => Assert.False(kv.Value.requires_grad, kv.Key));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var encoded = fixture.Task.Select(e => CausalLmFormat.Encode(fixture.Tokenizer, e.Source, e.Target, fixture.Config.Positions)).ToArray();
        using var batch = CausalLmFormat.Collate(encoded, fixture.Tokenizer.Pad);
        var expected = PeftForward.Logits(method, model, batch.InputIds);
        var actual = PeftForward.Logits(loaded, fresh, batch.InputIds);
        Assert.True(TestData.Identical(expected, actual), "outputs differ after save/load");
    }

    private PeftDependency SaveMethod(string cell, string method, Dictionary<string, string> options, Gpt2Model? model = null)
    {
        using var owned = model is null ? fixture.NewBase() : null;
        using var m = PeftRegistry.Create(method, options);
        m.Prepare(model ?? owned!, new PeftContext(1, fixture.Tokenizer));
        string directory = Path.Combine(_dir, cell);
        PeftCheckpoint.Save(m, directory);
        return new PeftDependency(cell, directory);
    }

    private T Refused<T>(IReadOnlyList<PeftDependency> dependencies, Dictionary<string, string>? options = null) where T : Exception
    {
        using var model = fixture.NewBase();
        using var method = Fusion(options);
        var e = Assert.Throws<T>(() => method.Prepare(model, Context(dependencies)));
        output.WriteLine(e.Message);
        return e;
    }

    [Fact]
    public void Dependencies_that_cannot_be_fused_are_refused_with_the_reason()
    {
        var adapters = fixture.SourceAdapters;
        Assert.Contains("needs at least 2 dependencies", Refused<InvalidOperationException>([]).Message);
        Assert.Contains("needs at least 2 dependencies, the trained 'adapter' cells to fuse; 1 was given",
            Refused<InvalidOperationException>([adapters[0]]).Message);
        Assert.Contains("option sources is 2 but 3 dependencies were given (reverse, copy, reverse); set sources: 3",
            Refused<InvalidOperationException>([.. adapters, adapters[0]]).Message);
        Assert.Contains("option sources is 3 but 2 dependencies were given",
            Refused<InvalidOperationException>(adapters, new() { ["bottleneck"] = "8", ["sources"] = "3" }).Message);

        var prompt = SaveMethod("a-prompt", "prompt", new() { ["length"] = "2" });
        Assert.Contains("dependency 'a-prompt'", Refused<ArgumentException>([adapters[0], prompt]).Message);
        Assert.Contains("was trained with method 'prompt', but AdapterFusion fuses Li & Liang's adapters (method 'adapter')",
            Refused<ArgumentException>([adapters[0], prompt]).Message);

        Assert.Contains("has bottleneck 8, but this fusion's option bottleneck is 6",
            Refused<ArgumentException>(adapters, new Dictionary<string, string>()).Message);

        using var small = new Gpt2Model(Gpt2Config.Preset("test", fixture.Tokenizer.VocabSize), seed: 1);
        var elsewhere = SaveMethod("other-base", "adapter", new() { ["bottleneck"] = "8" }, small);
        Assert.Contains("dependency 'other-base'", Refused<ArgumentException>([adapters[0], elsewhere]).Message);
        Assert.Contains("has adapters for 1 layers of width 32; the model has 2 layers of width 64",
            Refused<ArgumentException>([adapters[0], elsewhere]).Message);
    }

    [Fact]
    public void Bad_options_are_reported_with_their_paths()
    {
        var problems = PeftRegistry.Validate(AdapterFusionMethod.MethodName,
            new Dictionary<string, string> { ["sources"] = "1", ["value_init"] = "eye", ["temperature"] = "0", ["regularization"] = "-1", ["bottlenek"] = "8" });
        Assert.Equal(
        [
            "options.sources: expected an integer >= 2, got '1'",
            "options.value_init: expected one of 'identity', 'normal', got 'eye'",
            "options.temperature: expected a positive number, got '0'",
            "options.regularization: expected a non-negative number, got '-1'",
            "options.bottlenek: unknown option 'bottlenek' for method 'adapter-fusion' (did you mean 'bottleneck'?); allowed: sources, bottleneck, value_init, temperature, regularization",
        ], problems);
    }
}
