using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Pretraining;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

public sealed class PretrainTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-pretrain-");

    public void Dispose() => _root.Delete(recursive: true);

    internal static PretrainRecipe Recipe(string baseDirectory, int steps = 40, int seed = 1)
    {
        var spec = new ModelSpec("test", null, 0, new PretrainSpec(PretrainSpec.SyntheticCorpus, steps, seed,
            BatchSize: 8, LearningRate: 3e-3, WarmupSteps: 5, SequenceLength: 32, VocabSize: 400, Documents: 300));
        Assert.True(PretrainRecipe.TryFromIdentity(SweepPlanner.ResolveModel(spec, baseDirectory), out var recipe));
        return recipe;
    }

    [Fact]
    public void Pretraining_lowers_the_validation_loss_and_writes_a_hugging_face_folder_that_loads()
    {
        var recipe = Recipe(_root.FullName);
        string dir = Path.Combine(_root.FullName, "a");
        var report = BasePretrainer.Pretrain(recipe, dir);
        output.WriteLine($"loss {report.FirstLoss:F3} -> {report.FinalLoss:F3}; validation {report.ValidationLossBefore:F3} -> {report.ValidationLoss:F3}; {report.TokensPerSecond:F0} tokens/s");
        Assert.True(report.ValidationLoss < report.ValidationLossBefore - 0.75, "40 steps should learn at least the unigram statistics");
        Assert.Equal(400, report.VocabSize);
        Assert.Equal(recipe.Hash, report.Hash);
        foreach (var file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "pretrain.json" })
        {
            Assert.True(File.Exists(Path.Combine(dir, file)), file);
        }

        Assert.Equal(report, BasePretrainer.ReadReport(dir));
        using var checkpoint = ModelCheckpoint.Load(dir);
        Assert.Equal(Models.Gpt2Config.Preset("test", 400), checkpoint.Config);
        var tokenizer = Assert.IsType<Gpt2BpeTokenizer>(checkpoint.Tokenizer);
        const string text = "We had dinner at a small Italian restaurant near the station.";
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        output.WriteLine($"{tokenizer.Encode(text).Count} tokens for {text.Length} characters");
        Assert.True(tokenizer.Encode(text).Count < text.Length * 3 / 4);

        // Same recipe, same weights; and a run leaves no tensor behind.
        string again = Path.Combine(_root.FullName, "b");
        var stats = TorchSharp.DisposeScopeManager.Statistics;
        long live = stats.TensorStatistics.ThreadTotalLiveCount;
        BasePretrainer.Pretrain(recipe, again);
        Assert.Equal(live, stats.TensorStatistics.ThreadTotalLiveCount);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), File.ReadAllBytes(Path.Combine(again, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "merges.txt")), File.ReadAllText(Path.Combine(again, "merges.txt")));
    }

    /// <summary>
    /// The thread count changes the order of float sums on CPU, and it changed a pretrained base's bits (the demo recipe on 1
    /// and 2 threads), so a cluster worker and an embedded run gave every cell of one key different numbers. Pretraining
    /// runs on one thread whatever the process uses, and gives the process its count back.
    /// </summary>
    [Fact]
    public void Pretraining_runs_on_one_torch_thread_whatever_the_process_uses_and_restores_its_count()
    {
        int before = TorchSharp.torch.get_num_threads();
        try
        {
            var recipe = Recipe(_root.FullName, steps: 6, seed: 5);
            var seen = new HashSet<int>();
            TorchSharp.torch.set_num_threads(2);
            BasePretrainer.Pretrain(recipe, Path.Combine(_root.FullName, "two"), new InlineProgress(_ => seen.Add(TorchSharp.torch.get_num_threads())));
            Assert.Equal(2, TorchSharp.torch.get_num_threads());
            Assert.Equal([BasePretrainer.Threads], seen);

            TorchSharp.torch.set_num_threads(1);
            BasePretrainer.Pretrain(recipe, Path.Combine(_root.FullName, "one"));
            Assert.Equal(File.ReadAllBytes(Path.Combine(_root.FullName, "two", "model.safetensors")),
                File.ReadAllBytes(Path.Combine(_root.FullName, "one", "model.safetensors")));
        }
        finally
        {
            TorchSharp.torch.set_num_threads(before);
        }
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, after the step has moved on).</summary>
    private sealed class InlineProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }

    [Fact]
    public void A_base_kept_beside_a_spec_is_copied_after_its_hash_is_checked_and_a_changed_one_is_refused()
    {
        var recipe = Recipe(_root.FullName, steps: 10, seed: 3);
        string built = PretrainedBases.Ensure(recipe, Path.Combine(_root.FullName, "first"));
        string shippedRoot = Path.Combine(_root.FullName, "sweeps", "bases");
        PretrainedBases.Ship(built, shippedRoot, recipe.Hash);

        // A fresh data directory: the base is copied, byte for byte, without pretraining.
        var log = new List<string>();
        string fresh = Path.Combine(_root.FullName, "fresh");
        string copied = PretrainedBases.Ensure(recipe, fresh, log.Add, shippedRoot: shippedRoot);
        Assert.Equal(PretrainedBases.DirectoryFor(fresh, recipe.Hash), copied);
        Assert.DoesNotContain(log, l => l.StartsWith("Pretraining base", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("copied from", StringComparison.Ordinal));
        Assert.Equal(File.ReadAllBytes(Path.Combine(built, "model.safetensors")), File.ReadAllBytes(Path.Combine(copied, "model.safetensors")));

        // One byte of the kept weights changed: refused, naming the folder and the hash file.
        string weights = Path.Combine(shippedRoot, recipe.Hash, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 1;
        File.WriteAllBytes(weights, bytes);
        var changed = Assert.Throws<InvalidDataException>(() => PretrainedBases.Ensure(recipe, Path.Combine(_root.FullName, "other"), shippedRoot: shippedRoot));
        Assert.Contains("its files changed", changed.Message);
        Assert.Contains(recipe.Hash + ".sha256", changed.Message);
        Assert.False(Directory.Exists(PretrainedBases.DirectoryFor(Path.Combine(_root.FullName, "other"), recipe.Hash)));

        // A base kept under another recipe's name: refused too.
        var other = Recipe(_root.FullName, steps: 11, seed: 3);
        PretrainedBases.Ship(built, shippedRoot, other.Hash);
        var misnamed = Assert.Throws<InvalidDataException>(() => PretrainedBases.ShippedBase(other, shippedRoot));
        Assert.Contains("was not pretrained from the recipe", misnamed.Message);
    }

    [Fact]
    public void A_recipe_is_pretrained_once_even_when_asked_concurrently()
    {
        var recipe = Recipe(_root.FullName, steps: 20, seed: 2);
        string data = Path.Combine(_root.FullName, "data");
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var folders = new string[3];
        Parallel.For(0, 3, i => folders[i] = PretrainedBases.Ensure(recipe, data, log.Enqueue));
        Assert.All(folders, f => Assert.Equal(PretrainedBases.DirectoryFor(data, recipe.Hash), f));
        Assert.Single(log, l => l.StartsWith("Pretraining base", StringComparison.Ordinal));
        var written = File.GetLastWriteTimeUtc(Path.Combine(folders[0], "model.safetensors"));

        Assert.Equal(folders[0], PretrainedBases.Ensure(recipe, data, log.Enqueue));
        Assert.Single(log, l => l.StartsWith("Pretraining base", StringComparison.Ordinal));
        Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(folders[0], "model.safetensors")));
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(data, PretrainedBases.Folder), "*.tmp-*"));

        using var cache = new BaseModelCache(data);
        var loaded = cache.Get(recipe.ToIdentity());
        Assert.Equal(recipe.Hash, loaded.Hash);
        Assert.Equal(recipe, loaded.Pretraining?.Recipe);
        Assert.Same(loaded, cache.Get(recipe.ToIdentity()));
    }

    [Fact]
    public void A_cell_that_stops_waiting_does_not_cancel_the_pretraining_it_started()
    {
        var recipe = Recipe(_root.FullName, steps: 400, seed: 5);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        // The cell stops waiting as soon as the pretraining has begun (not after a fixed time, which a loaded machine's
        // late timer or a fast pretraining could outrun).
        using var lost = new CancellationTokenSource();
        using var cache = new BaseModelCache(Path.Combine(_root.FullName, "lease"))
        {
            Log = line =>
            {
                log.Enqueue(line);
                if (line.StartsWith("Pretraining base", StringComparison.Ordinal)) lost.Cancel();
            },
        };
        Assert.ThrowsAny<OperationCanceledException>(() => cache.Get(recipe.ToIdentity(), lost.Token));

        var loaded = cache.Get(recipe.ToIdentity());
        Assert.Equal(recipe.Hash, loaded.Hash);
        Assert.Equal(400, loaded.Pretraining?.Recipe.Steps);
        Assert.Single(log, l => l.StartsWith("Pretraining base", StringComparison.Ordinal));
        Assert.Single(log, l => l.StartsWith("Pretrained base", StringComparison.Ordinal));
    }

    [Fact]
    public void Cancelling_a_pretraining_leaves_nothing_behind()
    {
        var recipe = Recipe(_root.FullName, steps: 5000, seed: 3);
        string data = Path.Combine(_root.FullName, "cancelled");
        using var cts = new CancellationTokenSource();
        var progress = new Sync(p =>
        {
            if (p.Step == 3) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => PretrainedBases.Ensure(recipe, data, null, progress, cts.Token));
        Assert.False(PretrainedBases.IsComplete(PretrainedBases.DirectoryFor(data, recipe.Hash)));
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(data, PretrainedBases.Folder)));
    }

    private sealed class Sync(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
