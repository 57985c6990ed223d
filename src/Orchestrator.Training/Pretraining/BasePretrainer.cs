using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Specs;
using Orchestrator.Data.Synthetic;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Pretraining;

/// <summary>What a pretraining run did (also written as <c>pretrain.json</c> next to the weights).</summary>
public sealed record PretrainReport(
    [property: JsonPropertyName("recipe")] PretrainRecipe Recipe,
    [property: JsonPropertyName("hash")] string Hash,
    [property: JsonPropertyName("vocab_size")] int VocabSize,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("corpus_documents")] int CorpusDocuments,
    [property: JsonPropertyName("corpus_tokens")] long CorpusTokens,
    [property: JsonPropertyName("train_sequences")] int TrainSequences,
    [property: JsonPropertyName("validation_sequences")] int ValidationSequences,
    [property: JsonPropertyName("first_loss")] double FirstLoss,
    [property: JsonPropertyName("final_loss")] double FinalLoss,
    [property: JsonPropertyName("validation_loss_before")] double ValidationLossBefore,
    [property: JsonPropertyName("validation_loss")] double ValidationLoss,
    [property: JsonPropertyName("tokens_per_second")] double TokensPerSecond,
    [property: JsonPropertyName("tokenizer_seconds")] double TokenizerSeconds,
    [property: JsonPropertyName("train_seconds")] double TrainSeconds,
    [property: JsonPropertyName("device")] string Device);

/// <summary>
/// Pretrains a preset on a corpus (a <see cref="PretrainRecipe"/>) and writes it as a Hugging Face GPT-2 folder
/// (config.json, model.safetensors, vocab.json, merges.txt) plus <c>pretrain.json</c>.
/// <para>
/// Steps: load the corpus (<see cref="PretrainCorpus"/>); learn a byte-level BPE of the recipe's vocabulary size
/// (<see cref="BpeTrainer"/>); encode every document followed by <c>&lt;|endoftext|&gt;</c> into one token stream, cut it into
/// sequences of <c>sequence_length</c> tokens and hold out 2% of them (at most 64) for a validation loss; build the preset
/// with that vocabulary, initialised from <c>init_seed</c>; train <c>steps</c> updates of next-token cross-entropy on batches
/// drawn in a seeded shuffled order (AdamW eps 1e-8, no weight decay, linear warm-up then decay, gradient clipping at 1). Each
/// step runs in its own DisposeScope, always on one torch thread (<see cref="Threads"/>). Same recipe ⇒ the same weights on
/// the same CPU and torch build, whatever thread count the process uses.
/// </para>
/// </summary>
public static class BasePretrainer
{
    public const string ReportFile = "pretrain.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static PretrainReport Pretrain(
        PretrainRecipe recipe,
        string outputDirectory,
        IProgress<TrainProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        TorchRuntime.EnsureAvailable();

        // Always on Threads torch threads, whatever the process uses: on CPU the thread count changes the order of float
        // sums, so one recipe gave different bases (and every cell on them different numbers) on a 2-thread embedded run and
        // on a 1-thread cluster worker. The process's count is restored afterwards.
        int processThreads = TorchSharp.torch.get_num_threads();
        TorchRuntime.PinCurrentThread(Threads);
        try
        {
            return PretrainOnFixedThreads(recipe, outputDirectory, progress, cancellationToken);
        }
        finally
        {
            TorchRuntime.PinCurrentThread(processThreads);
        }
    }

    /// <summary>The torch threads every pretraining runs on (a recipe's base must not depend on the machine or the mode).</summary>
    public const int Threads = 1;

    private static PretrainReport PretrainOnFixedThreads(
        PretrainRecipe recipe,
        string outputDirectory,
        IProgress<TrainProgress>? progress,
        CancellationToken cancellationToken)
    {

        var clock = Stopwatch.StartNew();
        IReadOnlyList<string> documents = PretrainCorpus.Load(recipe.Corpus, recipe.CorpusPath, recipe.CorpusHash, recipe.Documents, recipe.Seed);
        Gpt2BpeTokenizer tokenizer = BpeTrainer.Train(documents, recipe.VocabSize);
        var stream = new List<int>();
        foreach (string document in documents)
        {
            cancellationToken.ThrowIfCancellationRequested();
            stream.AddRange(tokenizer.Encode(document));
            stream.Add(tokenizer.EndOfText);
        }

        double tokenizerSeconds = clock.Elapsed.TotalSeconds;
        Gpt2Config config = Gpt2Config.Preset(recipe.Preset, tokenizer.VocabSize);
        int length = recipe.SequenceLength;
        if (length > config.Positions)
        {
            throw new ArgumentException($"model.pretrain.sequence_length {length} exceeds the {recipe.Preset} preset's {config.Positions} positions.");
        }

        int sequences = stream.Count / length;
        if (sequences < 2)
        {
            throw new ArgumentException($"The pretraining corpus has {stream.Count} tokens: too few for two sequences of {length}.");
        }

        int validation = Math.Clamp(sequences / 50, 1, 64);
        int train = sequences - validation;
        int[] tokens = stream.ToArray();

        using var model = new Gpt2Model(config, recipe.InitSeed);
        var parameters = model.parameters().ToList();
        foreach (var p in parameters) p.requires_grad = true;
        var schedule = new TrainingOptions(recipe.Steps, recipe.BatchSize, recipe.LearningRate, recipe.WarmupSteps, 0, recipe.Seed);
        double validationBefore = ValidationLoss(model, tokens, train, validation, length);
        double first = double.NaN, last = double.NaN;
        var order = new SequenceOrder(train, recipe.Seed);
        var trainClock = Stopwatch.StartNew();
        using (var optimizer = optim.AdamW(parameters, recipe.LearningRate, eps: 1e-8, weight_decay: 0))
        {
            model.train();
            for (int step = 1; step <= recipe.Steps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double lr = recipe.LearningRate * schedule.ScheduleFactor(step - 1);
                foreach (ParamGroup group in optimizer.ParamGroups) group.LearningRate = lr;
                double loss;
                using (var scope = NewDisposeScope())
                {
                    int[] batch = Enumerable.Range(0, recipe.BatchSize).Select(_ => order.Next()).ToArray();
                    Tensor ids = Batch(tokens, batch, length);
                    optimizer.zero_grad();
                    Tensor logits = model.forward(ids);
                    Tensor lossTensor = CausalLmFormat.Loss(logits, ids);
                    loss = lossTensor.item<float>();
                    if (!double.IsFinite(loss))
                    {
                        throw new TrainingDivergedException(step, loss);
                    }

                    lossTensor.backward();
                    nn.utils.clip_grad_norm_(parameters, 1.0);
                    optimizer.step();
                }

                if (step == 1) first = loss;
                last = loss;
                progress?.Report(new TrainProgress(step, recipe.Steps, loss) { LearningRate = lr });
            }
        }

        double trainSeconds = trainClock.Elapsed.TotalSeconds;
        model.eval();
        double validationAfter = ValidationLoss(model, tokens, train, validation, length);
        var report = new PretrainReport(
            recipe, recipe.Hash, tokenizer.VocabSize, model.parameters().Sum(p => p.numel()), documents.Count, stream.Count, train, validation,
            first, last, validationBefore, validationAfter,
            (double)recipe.Steps * recipe.BatchSize * length / Math.Max(1e-9, trainSeconds), tokenizerSeconds, trainSeconds, TorchRuntime.Describe());

        ModelCheckpoint.Save(model, config, tokenizer, outputDirectory);
        File.WriteAllText(Path.Combine(outputDirectory, ReportFile), JsonSerializer.Serialize(report, Json));
        return report;
    }

    /// <summary>Reads the <c>pretrain.json</c> of a pretrained base folder (null when there is none).</summary>
    public static PretrainReport? ReadReport(string directory)
    {
        string path = Path.Combine(directory, ReportFile);
        return File.Exists(path) ? JsonSerializer.Deserialize<PretrainReport>(File.ReadAllText(path), Json) : null;
    }

    private static Tensor Batch(int[] tokens, int[] sequences, int length)
    {
        var ids = new long[sequences.Length * length];
        for (int r = 0; r < sequences.Length; r++)
        {
            int start = sequences[r] * length;
            for (int c = 0; c < length; c++) ids[r * length + c] = tokens[start + c];
        }

        return tensor(ids, [sequences.Length, length], ScalarType.Int64);
    }

    /// <summary>Mean next-token loss over the held-out sequences (the last <paramref name="count"/> of the stream).</summary>
    private static double ValidationLoss(Gpt2Model model, int[] tokens, int first, int count, int length)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double total = 0;
            long n = 0;
            for (int start = 0; start < count; start += 16)
            {
                using var scope = NewDisposeScope();
                int[] batch = Enumerable.Range(first + start, Math.Min(16, count - start)).ToArray();
                Tensor ids = Batch(tokens, batch, length);
                Tensor logits = model.forward(ids);
                total += CausalLmFormat.Loss(logits, ids, sum: true).item<float>();
                n += batch.Length * (length - 1L);
            }

            return total / n;
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Sequence indices in a seeded order, reshuffled after each pass (SplitMix64 + Fisher–Yates).</summary>
    private sealed class SequenceOrder(int count, long seed)
    {
        private readonly int[] _order = Enumerable.Range(0, count).ToArray();
        private readonly Core.Hashing.SplitMix64 _rng = new(unchecked((ulong)seed) ^ 0x243F6A8885A308D3UL);
        private int _position = count;

        public int Next()
        {
            if (_position >= _order.Length)
            {
                _rng.Shuffle(_order);
                _position = 0;
            }

            return _order[_position++];
        }
    }
}
