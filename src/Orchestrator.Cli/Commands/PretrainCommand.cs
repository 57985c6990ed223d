using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Training;
using Orchestrator.Training.Pretraining;
using Models = Orchestrator.Training.Models;
using Orchestrator.Worker;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator pretrain</c>: pretrain a small base on a text corpus and cache it under <c>DATA_DIR/bases/HASH</c> in Hugging
/// Face GPT-2 layout (the same cache and hash a spec's <c>model.pretrain</c> uses, so pretraining ahead of a sweep makes the
/// sweep start at once). Also makes every command with <c>--data-dir</c> cache pretrained bases in that folder.
/// </summary>
internal static class PretrainCommand
{
    /// <summary>
    /// Adds <c>pretrain</c>, and points the base-model cache of every command that takes <paramref name="dataDir"/> (run,
    /// demo, submit, …, whenever they are registered) at that folder: the option's value, when given, becomes
    /// <see cref="BaseModelCache.DefaultDataDirectory"/> when the command line is parsed (without it, the commands that open a
    /// host set it from the data directory rule), so pretrained bases are cached under <c>DATA_DIR/bases</c> of that run.
    /// </summary>
    public static void Register(RootCommand root, Option<string> dataDir)
    {
        dataDir.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { Length: > 0 } directory)
            {
                BaseModelCache.DefaultDataDirectory = directory;
            }
        });

        var spec = new Option<string?>("--spec") { Description = "Take the recipe from this sweep spec's model.pretrain (other recipe options are then ignored)" };
        var preset = new Option<string>("--preset") { Description = "Shape to pretrain (tiny, test, gpt2, …)", DefaultValueFactory = _ => "tiny" };
        var initSeed = new Option<int>("--init-seed") { Description = "Seed of the random initialisation", DefaultValueFactory = _ => 0 };
        var corpus = new Option<string>("--corpus") { Description = "'synthetic' (generated review text) or a text file/folder, one document per line", DefaultValueFactory = _ => PretrainSpec.SyntheticCorpus };
        var steps = new Option<int>("--steps") { Description = "Optimizer updates", DefaultValueFactory = _ => PretrainSpec.DefaultSteps };
        var seed = new Option<int>("--seed") { Description = "Seed of the data order (and of the synthetic corpus)", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per update", DefaultValueFactory = _ => PretrainSpec.DefaultBatchSize };
        var lr = new Option<double>("--learning-rate") { Description = "Peak learning rate (AdamW)", DefaultValueFactory = _ => PretrainSpec.DefaultLearningRate };
        var warmup = new Option<int>("--warmup-steps") { Description = "Linear warm-up updates", DefaultValueFactory = _ => PretrainSpec.DefaultWarmupSteps };
        var length = new Option<int>("--sequence-length") { Description = "Tokens per sequence", DefaultValueFactory = _ => PretrainSpec.DefaultSequenceLength };
        var vocab = new Option<int>("--vocab-size") { Description = "Byte-level BPE vocabulary size learnt from the corpus", DefaultValueFactory = _ => PretrainSpec.DefaultVocabSize };
        var documents = new Option<int>("--documents") { Description = "Documents of the synthetic corpus", DefaultValueFactory = _ => PretrainSpec.DefaultDocuments };
        var output = new Option<string?>("--out") { Description = "Also copy the base folder here" };
        var ship = new Option<string?>("--ship") { Description = "Also keep the base in this folder as HASH/ with its content hash in HASH.sha256 (e.g. sweeps/bases): runs of specs beside it copy it instead of pretraining" };

        var command = new Command("pretrain", "Pretrain a small base on a text corpus (cached by content hash under DATA_DIR/bases) in Hugging Face GPT-2 layout.");
        foreach (var option in new Option[] { spec, preset, initSeed, corpus, steps, seed, batch, lr, warmup, length, vocab, documents, dataDir, output, ship })
        {
            command.Options.Add(option);
        }

        command.SetAction((pr, ct) => Task.Run(() =>
        {
            ModelSpec model;
            string baseDirectory;
            try
            {
                if (pr.GetValue(spec) is { } specPath)
                {
                    var parsed = SpecParser.ParseFile(specPath, OrchestratorVocabulary.Default);
                    model = parsed.Model;
                    baseDirectory = Path.GetDirectoryName(Path.GetFullPath(specPath))!;
                    if (model.Pretrain is null)
                    {
                        Console.Error.WriteLine($"{specPath}: model has no 'pretrain' section; nothing to pretrain.");
                        return CliApp.ExitInvalidInput;
                    }
                }
                else
                {
                    var recipe = new PretrainSpec(pr.GetValue(corpus)!, pr.GetValue(steps), pr.GetValue(seed), pr.GetValue(batch), pr.GetValue(lr),
                        pr.GetValue(warmup), pr.GetValue(length), pr.GetValue(vocab), pr.GetValue(documents));
                    model = new ModelSpec(pr.GetValue(preset), null, pr.GetValue(initSeed), recipe);
                    baseDirectory = Environment.CurrentDirectory;
                    var problems = recipe.Problems().ToList();
                    if (!Models.Gpt2Config.PresetNames.Contains(model.Preset!))
                    {
                        problems.Add($"preset: unknown preset '{model.Preset}' (known: {string.Join(", ", Models.Gpt2Config.PresetNames)})");
                    }

                    if (problems.Count > 0)
                    {
                        foreach (var problem in problems) Console.Error.WriteLine($"pretrain: --{problem.Replace('_', '-')}");
                        return CliApp.ExitInvalidInput;
                    }
                }

                var identity = SweepPlanner.ResolveModel(model, baseDirectory, "pretrain");
                if (!PretrainRecipe.TryFromIdentity(identity, out var resolved))
                {
                    Console.Error.WriteLine("pretrain: the model section does not describe a pretraining run.");
                    return CliApp.ExitInvalidInput;
                }

                return Pretrain(resolved, Core.Paths.OrchestratorHome.Locate(pr.GetValue(dataDir)).Path, pr.GetValue(output), pr.GetValue(ship), ct);
            }
            catch (SpecValidationException ex) when (pr.GetValue(spec) is null)
            {
                foreach (var error in ex.Errors) Console.Error.WriteLine($"pretrain: --{error.Path.Split('.')[^1].Replace('_', '-')}: {error.Message}");
                return CliApp.ExitInvalidInput;
            }
            catch (SpecValidationException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return CliApp.ExitInvalidInput;
            }
            catch (Exception ex) when (ex is ArgumentException or DatasetException or FormatException)
            {
                Console.Error.WriteLine($"pretrain: {ex.Message}");
                return CliApp.ExitInvalidInput;
            }
        }, ct));
        root.Subcommands.Add(command);
    }

    private static int Pretrain(PretrainRecipe recipe, string dataDir, string? output, string? ship, CancellationToken ct)
    {
        TorchRuntime.EnsureAvailable();
        var clock = Stopwatch.StartNew();
        string target = PretrainedBases.DirectoryFor(dataDir, recipe.Hash);
        bool cached = PretrainedBases.IsComplete(target);
        var progress = new ConsoleProgress(recipe.Steps);
        string folder = PretrainedBases.Ensure(recipe, dataDir, Console.WriteLine, progress, ct);
        var report = BasePretrainer.ReadReport(folder);
        Console.WriteLine(cached ? $"Base {recipe.Hash[..12]} was already pretrained: {folder}" : $"Pretrained base {recipe.Hash[..12]} in {clock.Elapsed.TotalSeconds:F1} s: {folder}");
        if (report is not null)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {report.Parameters:N0} parameters, vocabulary {report.VocabSize}; corpus {report.CorpusDocuments:N0} documents, {report.CorpusTokens:N0} tokens; "
                + $"train loss {report.FirstLoss:F3} → {report.FinalLoss:F3}, validation {report.ValidationLossBefore:F3} → {report.ValidationLoss:F3}; "
                + $"{report.TokensPerSecond:F0} tokens/s"));
        }

        if (output is not null)
        {
            Directory.CreateDirectory(output);
            foreach (var file in Directory.EnumerateFiles(folder))
            {
                File.Copy(file, Path.Combine(output, Path.GetFileName(file)), overwrite: true);
            }

            Console.WriteLine($"  copied to {Path.GetFullPath(output)} (use it in a spec as model: {{path: {Path.GetFullPath(output)}}})");
        }

        if (ship is not null)
        {
            string shipped = PretrainedBases.Ship(folder, ship, recipe.Hash);
            Console.WriteLine($"  kept in {Path.GetFullPath(shipped)} with its content hash in {PretrainedBases.ShippedHashFile(Path.GetFullPath(ship), recipe.Hash)}");
        }

        return 0;
    }

    /// <summary>Prints the loss every tenth of the run (synchronously: Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class ConsoleProgress(int steps) : IProgress<TrainProgress>
    {
        private readonly int _every = Math.Max(1, steps / 10);

        public void Report(TrainProgress value)
        {
            if (value.Step % _every == 0 || value.Step == value.MaxSteps)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  step {value.Step}/{value.MaxSteps}: loss {value.Loss:F3}"));
            }
        }
    }
}
