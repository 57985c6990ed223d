using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Manifests;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator data manifest</c> (the subsample manifest a cell would use) and <c>orchestrator data stats</c>
/// (counts per part, category and split). Both read datasets exactly as a sweep does (<see cref="DatasetCatalog"/>).
/// </summary>
public static class DataCommands
{
    public static void Register(RootCommand root)
    {
        var data = new Command("data", "Download datasets; inspect them (subsample manifests, statistics); write a pretraining corpus from datasets.");
        data.Subcommands.Add(DataGetCommand.Create());
        data.Subcommands.Add(ManifestCommand());
        data.Subcommands.Add(StatsCommand());
        data.Subcommands.Add(CorpusCommand());
        root.Subcommands.Add(data);
    }

    private static Command ManifestCommand()
    {
        var (dataset, path, options) = DatasetOptions();
        var size = new Option<int>("--size") { Description = "Training-set size (the dev set adds 30%)", Required = true };
        var subsample = new Option<int>("--subsample") { Description = "Subsample index (0, 1, …)", Required = true };
        var seed = new Option<int>("--seed") { Description = "Manifest seed (a spec's grid.manifest_seed)", DefaultValueFactory = _ => 0 };
        var nested = new Option<bool>("--nested") { Description = "Rank ignoring the size, so smaller sets are prefixes of larger ones" };
        var split = new Option<string>("--split") { Description = "Split whose training pool to draw from", DefaultValueFactory = _ => "default" };
        var format = FormatOption("json");
        var output = new Option<string?>("--out") { Description = "Also write the manifest (with its hash) to this file" };

        var command = new Command("manifest", "Print the example ids (train and dev) a cell with these settings trains on, and the manifest's hash.");
        foreach (var o in new Option[] { dataset, path, options, size, subsample, seed, nested, split, format, output })
        {
            command.Options.Add(o);
        }

        command.SetAction(pr => Run(() =>
        {
            var identity = Resolve(pr.GetValue(dataset)!, pr.GetValue(path), pr.GetValue(options), [pr.GetValue(split)!]);
            var loaded = DatasetCatalog.Load(identity).ForSplit(pr.GetValue(split)!);
            var sizeValue = pr.GetValue(size);
            var subsampleValue = pr.GetValue(subsample);
            if (sizeValue <= 0 || subsampleValue < 0)
            {
                throw new DatasetException(sizeValue <= 0 ? "--size must be positive" : "--subsample must be 0 or more");
            }

            var manifest = SubsampleManifest.Create(loaded.ContentHash, CellExpander.TrainingPool,
                loaded.TrainingExamples.Select(e => e.Id).ToList(), sizeValue, subsampleValue, pr.GetValue(seed), pr.GetValue(nested));
            if (pr.GetValue(output) is { } file)
            {
                manifest.Save(file);
            }

            if (pr.GetValue(format) == "json")
            {
                Console.Write(manifest.ToFileJson());
            }
            else
            {
                var sb = new StringBuilder();
                sb.Append(CultureInfo.InvariantCulture, $"manifest {manifest.Hash}\n");
                sb.Append(CultureInfo.InvariantCulture, $"dataset  {identity.Kind} {manifest.DatasetHash[..12]} split {loaded.Split}, pool {manifest.Pool} ({loaded.TrainingExamples.Count} examples)\n");
                sb.Append(CultureInfo.InvariantCulture, $"size {manifest.Size}, subsample {manifest.Subsample}, seed {manifest.Seed}, nested {(manifest.Nested ? "yes" : "no")}, algorithm {manifest.Algorithm}\n");
                sb.Append(CultureInfo.InvariantCulture, $"train ({manifest.TrainIds.Count}):\n");
                foreach (var id in manifest.TrainIds)
                {
                    sb.Append("  ").Append(id).Append('\n');
                }

                sb.Append(CultureInfo.InvariantCulture, $"dev ({manifest.DevIds.Count}):\n");
                foreach (var id in manifest.DevIds)
                {
                    sb.Append("  ").Append(id).Append('\n');
                }

                Console.Write(sb.ToString());
            }

            return 0;
        }));
        return command;
    }

    private static Command StatsCommand()
    {
        var (dataset, path, options) = DatasetOptions();
        var format = FormatOption("text");
        var command = new Command("stats", "Count inputs and references per part, category (seen/unseen) and split.");
        foreach (var o in new Option[] { dataset, path, options, format })
        {
            command.Options.Add(o);
        }

        command.SetAction(pr => Run(() =>
        {
            var identity = Resolve(pr.GetValue(dataset)!, pr.GetValue(path), pr.GetValue(options), ["default"]);
            var stats = DatasetStatistics.Compute(identity);
            Console.Write(pr.GetValue(format) == "json" ? StatsJson(stats) : StatsText(stats));
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// <c>data corpus</c>: a plain-text pretraining corpus (one document per line) from a dataset's part, for
    /// <c>model.pretrain.corpus</c>: each (input, reference) pair becomes <c>source reference</c>, or only the reference with
    /// <c>--text-only</c>. Deterministic (the dataset's order), so the file's content hash, and the base's, is stable.
    /// </summary>
    private static Command CorpusCommand()
    {
        var (dataset, path, options) = DatasetOptions();
        var part = new Option<string>("--part")
        {
            Description = "Which part to write: train (default), dev, test, or all (a single-file dataset has only 'all')",
            DefaultValueFactory = _ => DatasetPart.Train,
        };
        part.AcceptOnlyFromAmong(DatasetPart.Train, DatasetPart.Dev, DatasetPart.Test, DatasetPart.All);
        var output = new Option<string>("--out") { Description = "Text file to write (one document per line)", Required = true };
        var append = new Option<bool>("--append") { Description = "Append to the file instead of replacing it (to combine datasets)" };
        var textOnly = new Option<bool>("--text-only") { Description = "Write only the references, not the linearised inputs" };
        var command = new Command("corpus", "Write a pretraining corpus (one document per line) from a dataset part, e.g. WebNLG and DART training text.");
        foreach (var o in new Option[] { dataset, path, options, part, output, append, textOnly })
        {
            command.Options.Add(o);
        }

        command.SetAction(pr => Run(() =>
        {
            var identity = Resolve(pr.GetValue(dataset)!, pr.GetValue(path), pr.GetValue(options), ["default"]);
            var contents = DatasetCatalog.ReadContents(identity);
            var name = pr.GetValue(part)!;
            var chosen = contents.Part(name) ?? throw new DatasetException(
                $"--part {name}: the {identity.Kind} dataset at {identity.Path} has no '{name}' part (it has: {string.Join(", ", contents.Parts.Select(p => p.Name))})");
            var file = pr.GetValue(output)!;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            int documents = 0;
            using (var writer = new StreamWriter(file, pr.GetValue(append), new UTF8Encoding(false)))
            {
                foreach (var entry in chosen.Entries)
                {
                    foreach (var reference in entry.References)
                    {
                        var text = pr.GetValue(textOnly) ? reference : entry.Source + " " + reference;
                        writer.Write(text.ReplaceLineEndings(" ").Trim());
                        writer.Write('\n');
                        documents++;
                    }
                }
            }

            Console.WriteLine($"wrote {documents} documents from {chosen.Entries.Count} {identity.Kind} inputs ({name}) to {file}");
            return 0;
        }));
        return command;
    }

    private static (Option<string> Dataset, Option<string?> Path, Option<string[]> Options) DatasetOptions()
    {
        var dataset = new Option<string>("--dataset")
        {
            Description = $"Dataset kind ({string.Join(", ", DatasetCatalog.Kinds)})",
            Required = true,
        };
        dataset.AcceptOnlyFromAmong([.. DatasetCatalog.Kinds]);
        var path = new Option<string?>("--path") { Description = "Dataset file or folder (relative to the current folder)" };
        var options = new Option<string[]>("--option")
        {
            Description = "Reader option KEY=VALUE (as in a spec's dataset.options), repeatable",
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [],
        };
        return (dataset, path, options);
    }

    private static Option<string> FormatOption(string defaultFormat)
    {
        var format = new Option<string>("--format") { Description = "Output format: json or text", DefaultValueFactory = _ => defaultFormat };
        format.AcceptOnlyFromAmong("json", "text");
        return format;
    }

    private static DatasetIdentity Resolve(string kind, string? path, string[]? options, IReadOnlyList<string> splits)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var option in options ?? [])
        {
            var eq = option.IndexOf('=');
            if (eq <= 0)
            {
                throw new DatasetException($"--option: expected KEY=VALUE, got '{option}'");
            }

            map[option[..eq].Trim()] = option[(eq + 1)..].Trim();
        }

        var spec = new DatasetSpec(kind, path, splits, null, map);
        return DatasetCatalog.Resolve(spec, Environment.CurrentDirectory);
    }

    /// <summary>Runs a command body; data problems print one line on stderr and exit with 2.</summary>
    private static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (DatasetException ex)
        {
            // Spec-style prefixes ("dataset.path: …") read better as the command-line option they came from.
            var message = ex.Message
                .Replace("dataset.path:", "--path:", StringComparison.Ordinal)
                .Replace("dataset.options", "--option", StringComparison.Ordinal)
                .Replace("dataset.splits[0]:", "--split:", StringComparison.Ordinal)
                .Replace("dataset.kind:", "--dataset:", StringComparison.Ordinal);
            Console.Error.WriteLine($"error: {message}");
            return CliApp.ExitInvalidInput;
        }
    }

    private static string StatsText(DatasetStatistics s)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{s.Kind} {s.Path}\ncontent hash {s.ContentHash}\n\n");
        var rows = new List<string[]> { new[] { "part", "category", "group", "entries", "references" } };
        foreach (var part in s.Parts)
        {
            foreach (var c in s.Categories.Where(c => c.Part == part.Part))
            {
                rows.Add([c.Part, c.Category!, c.Group ?? "", N(c.Entries), N(c.References)]);
            }

            rows.Add([part.Part, "(total)", "", N(part.Entries), N(part.References)]);
            foreach (var group in s.Categories.Where(c => c.Part == part.Part && c.Group is not null).GroupBy(c => c.Group!).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                rows.Add([part.Part, $"({group.Key})", "", N(group.Sum(c => c.Entries)), N(group.Sum(c => c.References))]);
            }
        }

        AppendTable(sb, rows, rightAligned: 3);
        sb.Append('\n');
        var splits = new List<string[]> { new[] { "split", "train inputs", "train examples", "eval inputs", "eval references", "what" } };
        splits.AddRange(s.Splits.Select(x => new[] { x.Split, N(x.PoolEntries), N(x.TrainingExamples), N(x.EvalEntries), N(x.EvalReferences), x.Description }));
        AppendTable(sb, splits, rightAligned: 1, rightAlignedEnd: 4);
        foreach (var note in s.Notes)
        {
            sb.Append("note: ").Append(note).Append('\n');
        }

        return sb.ToString();
    }

    private static string StatsJson(DatasetStatistics s)
    {
        var json = new
        {
            kind = s.Kind,
            path = s.Path,
            content_hash = s.ContentHash,
            parts = s.Parts.Select(p => new
            {
                part = p.Part,
                entries = p.Entries,
                references = p.References,
                categories = s.Categories.Where(c => c.Part == p.Part)
                    .Select(c => new { category = c.Category, group = c.Group, entries = c.Entries, references = c.References }),
            }),
            splits = s.Splits.Select(x => new
            {
                split = x.Split,
                description = x.Description,
                train_entries = x.PoolEntries,
                train_examples = x.TrainingExamples,
                eval_entries = x.EvalEntries,
                eval_references = x.EvalReferences,
            }),
            notes = s.Notes,
        };
        return JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static void AppendTable(StringBuilder sb, List<string[]> rows, int rightAligned, int rightAlignedEnd = int.MaxValue)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            var cells = row.Select((cell, i) => i >= rightAligned && i <= rightAlignedEnd ? cell.PadLeft(widths[i]) : cell.PadRight(widths[i]));
            sb.Append(string.Join("  ", cells).TrimEnd()).Append('\n');
        }
    }
}
