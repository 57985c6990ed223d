using System.Globalization;
using System.Text;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Data.Dart;
using Orchestrator.Data.Download;
using Orchestrator.Data.E2E;
using Orchestrator.Data.Json;
using Orchestrator.Data.Splits;
using Orchestrator.Data.WebNlg;

namespace Orchestrator.Data;

/// <summary>
/// Resolves a spec's dataset to its content identity (at submit time) and loads it (on the worker),
/// checking that the content has not changed in between.
/// </summary>
public static class DatasetCatalog
{
    public const string SyntheticE2e = "synthetic-e2e";
    public const string E2e = "e2e";
    public const string Webnlg = "webnlg";
    public const string Dart = "dart";
    public const string Xsum = "xsum";
    public const string Jsonl = "jsonl";

    /// <summary>Share of inputs (by hash of their text) that go to the training pool; the rest is the evaluation set.</summary>
    public const int TrainPoolPercent = 80;

    public static IReadOnlyCollection<string> Kinds { get; } = [SyntheticE2e, E2e, Webnlg, Dart, Xsum, Jsonl];

    /// <summary>What <c>path</c> names for each file-backed kind (for messages and docs).</summary>
    private static string PathHelp(string kind) => kind switch
    {
        E2e => "a CSV file with columns mr,ref (or a folder with one *train*.csv and one *test*.csv)",
        Webnlg => "a WebNLG 2017 folder (train/**/*.xml and test/testdata_with_lex.xml) or one benchmark XML file",
        Dart => "a DART JSON file (or a folder with one *train*.json and one *test*.json)",
        Xsum => "an XSUM JSONL file {id, document, summary, topic} (or a folder with one *train*.jsonl and one *test*.jsonl)",
        Jsonl => "a JSONL file {id, source, references[], topic?} (or a folder with one *train*.jsonl and one *test*.jsonl)",
        _ => "a file",
    };

    public static DatasetIdentity Resolve(DatasetSpec spec, string baseDirectory)
    {
        if (!Kinds.Contains(spec.Kind))
        {
            throw new DatasetException($"dataset.kind: unknown dataset kind '{spec.Kind}' (known: {string.Join(", ", Kinds)})");
        }

        var options = CheckOptions(spec.Kind, spec.Options);
        CheckSplits(spec.Kind, options, spec.Splits);

        if (spec.Kind == SyntheticE2e)
        {
            if (spec.Path is not null)
            {
                throw new DatasetException("dataset.path: the synthetic-e2e dataset is generated; it takes no path");
            }

            var (count, seed) = SyntheticOptions(options);
            var canonical = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                ["mrs"] = count.ToString(CultureInfo.InvariantCulture),
                ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
            };
            var hash = HashEntries(SyntheticE2e_Generate(count, seed));
            return new DatasetIdentity(SyntheticE2e, null, hash, canonical, spec.EvalLimit);
        }

        if (spec.Path is null)
        {
            throw new DatasetException(spec.Kind == E2e
                ? "dataset.path: the e2e dataset needs the path of its CSV file (columns mr,ref)"
                : $"dataset.path: the {spec.Kind} dataset needs a path: {PathHelp(spec.Kind)}");
        }

        var named = DatasetNames.IsName(spec.Path);
        if (named && DatasetSources.Find(NameOf(spec.Path)) is { } source && source.Kind != spec.Kind)
        {
            throw new DatasetException($"dataset.path: {spec.Path} holds {source.Kind} data, but dataset.kind is {spec.Kind}");
        }

        var path = named ? DatasetNames.Resolve(spec.Path) : Path.GetFullPath(Path.Combine(baseDirectory, spec.Path));
        var files = Locate(spec.Kind, path);
        return new DatasetIdentity(spec.Kind, named ? spec.Path.Trim() : path, HashFiles(path, files),
            new SortedDictionary<string, string>(options.ToDictionary(), StringComparer.Ordinal), spec.EvalLimit);
    }

    public static LoadedDataset Load(DatasetIdentity id)
    {
        var contents = ReadContents(id);
        if (contents.ContentHash != id.ContentHash)
        {
            throw new DatasetException(
                $"dataset {id.Kind} {id.Path} changed since the sweep was submitted (content hash {contents.ContentHash[..12]}, expected {id.ContentHash[..12]}); resubmit the spec");
        }

        return Build(contents, id.Options, id.EvalLimit);
    }

    /// <summary>Reads (or generates) a dataset's entries without splitting them; the hash is recomputed from the files.</summary>
    public static DatasetContents ReadContents(DatasetIdentity id)
    {
        if (id.Kind == SyntheticE2e)
        {
            var (count, seed) = SyntheticOptions(id.Options);
            var generated = SyntheticE2e_Generate(count, seed);
            return new DatasetContents(SyntheticE2e, HashEntries(generated), [new DatasetPart(DatasetPart.All, generated)], []);
        }

        if (!Kinds.Contains(id.Kind))
        {
            throw new DatasetException($"unknown dataset kind '{id.Kind}'");
        }

        var path = id.Path ?? throw new DatasetException($"{id.Kind} dataset without a path");
        if (DatasetNames.IsName(path))
        {
            path = DatasetNames.Resolve(path, $"dataset {id.Kind}");
        }

        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new DatasetException($"dataset file not found on this machine: {path}");
        }

        var files = Locate(id.Kind, path);
        var hash = HashFiles(path, files);
        var notes = new List<string>();
        var parts = new List<DatasetPart>();
        foreach (var group in files.GroupBy(f => f.Part))
        {
            var entries = new List<DataEntry>();
            foreach (var (part, file) in group)
            {
                entries.AddRange(ReadFile(id.Kind, path, part, file, notes));
            }

            parts.Add(new DatasetPart(group.Key, entries));
        }

        CheckUniqueIds(path, parts.Where(p => p.Name != DatasetPart.Dev));
        if (parts.FirstOrDefault(p => p.Name == DatasetPart.Test) is { } test && parts.FirstOrDefault(p => p.Name == DatasetPart.Train) is { } train)
        {
            var trainSources = train.Entries.Select(e => e.Source).ToHashSet(StringComparer.Ordinal);
            var overlap = test.Entries.Count(e => trainSources.Contains(e.Source));
            if (overlap > 0)
            {
                notes.Add($"{overlap} test input(s) also occur in the training data (as distributed)");
            }
        }

        return new DatasetContents(id.Kind, hash, parts, notes);
    }

    /// <summary>
    /// Splits inputs once, deterministically, by a hash of their text: ~80% training pool, ~20% evaluation
    /// (each evaluation input with all its references; none of them is ever trained on).
    /// </summary>
    public static LoadedDataset Split(string kind, string hash, IReadOnlyList<DataEntry> entries, int? evalLimit) =>
        Build(new DatasetContents(kind, hash, [new DatasetPart(DatasetPart.All, entries)], []), new Dictionary<string, string>(), evalLimit);

    /// <summary>The dataset's default split, with the other splits available through <see cref="LoadedDataset.ForSplit"/>.</summary>
    public static LoadedDataset Build(DatasetContents contents, IReadOnlyDictionary<string, string> options, int? evalLimit)
    {
        var splits = EvaluationSplits.For(contents.Kind, options);
        var names = splits.Select(s => s.Name).ToList();
        LoadedDataset? root = null;
        LoadedDataset Make(string name)
        {
            var split = splits.First(s => s.Name == name);
            var (pool, eval) = Apply(contents, split, evalLimit);
            return new LoadedDataset(contents.Kind, contents.ContentHash, pool, eval)
            {
                Split = name,
                SplitNames = names,
                SplitFactory = n => n == EvaluationSplits.Default ? root! : Make(n),
            };
        }

        root = Make(EvaluationSplits.Default);
        return root;
    }

    /// <summary>Hash bucket 0–99 of an input text; buckets below <see cref="TrainPoolPercent"/> go to the training pool.</summary>
    public static int Bucket(string source) => (int)(Convert.ToUInt32(ContentHash.Of(source)[..8], 16) % 100);

    private static (List<DataEntry> Pool, List<DataEntry> Eval) Apply(DatasetContents contents, EvaluationSplit split, int? evalLimit)
    {
        var pool = new List<DataEntry>();
        var eval = new List<DataEntry>();
        if (contents.Part(DatasetPart.All) is { } all)
        {
            foreach (var e in all.Entries)
            {
                // Trainable inputs are split by hash; inputs this split never trains on are all evaluated.
                var trainable = split.Trainable(e);
                var poolBucket = Bucket(e.Source) < TrainPoolPercent;
                if (trainable && poolBucket)
                {
                    pool.Add(e);
                }
                else if (split.Evaluated(e))
                {
                    eval.Add(e);
                }
            }
        }
        else
        {
            pool.AddRange(contents.Part(DatasetPart.Train)?.Entries.Where(split.Trainable) ?? []);
            eval.AddRange(contents.Part(DatasetPart.Test)?.Entries.Where(split.Evaluated) ?? []);
        }

        return (pool, GroupForEvaluation(eval, evalLimit));
    }

    /// <summary>
    /// The evaluation set in a fixed pseudo-random order (by hash of the input text), inputs with identical text
    /// merged into one entry with all their references (as the E2E scripts group rows of one MR; repeated
    /// references are kept, as those scripts keep them), then capped at <paramref name="evalLimit"/>.
    /// </summary>
    public static List<DataEntry> GroupForEvaluation(IEnumerable<DataEntry> entries, int? evalLimit)
    {
        var grouped = entries
            .Select(e => (Rank: ContentHash.Of(e.Source), Entry: e))
            .OrderBy(x => x.Rank, StringComparer.Ordinal)
            .GroupBy(x => x.Entry.Source, StringComparer.Ordinal)
            .Select(g =>
            {
                var first = g.First().Entry;
                if (g.Count() == 1)
                {
                    return first;
                }

                return first with { References = g.SelectMany(x => x.Entry.References).ToList() };
            });
        if (evalLimit is { } limit)
        {
            grouped = grouped.Take(limit);
        }

        return grouped.ToList();
    }

    /// <summary>The files a dataset path stands for, each with its part (<c>all</c>, <c>train</c>, <c>dev</c>, <c>test</c>).</summary>
    public static IReadOnlyList<(string Part, string File)> Locate(string kind, string path)
    {
        if (File.Exists(path))
        {
            return [(DatasetPart.All, path)];
        }

        if (!Directory.Exists(path))
        {
            throw new DatasetException($"dataset.path: file not found: {path} (expected {PathHelp(kind)})");
        }

        if (kind == Webnlg)
        {
            var train = XmlUnder(Path.Combine(path, "train"));
            if (train.Count == 0)
            {
                throw new DatasetException($"dataset.path: {path} has no train/**/*.xml (expected {PathHelp(kind)})");
            }

            var testDir = Path.Combine(path, "test");
            var preferred = Path.Combine(testDir, "testdata_with_lex.xml");
            string test;
            if (File.Exists(preferred))
            {
                test = preferred;
            }
            else
            {
                var candidates = Directory.Exists(testDir) ? Directory.GetFiles(testDir, "*.xml").Order(StringComparer.Ordinal).ToList() : [];
                test = candidates.Count == 1
                    ? candidates[0]
                    : throw new DatasetException($"dataset.path: cannot tell which XML under {testDir} is the test set with references (expected test/testdata_with_lex.xml; found {candidates.Count} XML files)");
            }

            return [.. train.Select(f => (DatasetPart.Train, f)), .. XmlUnder(Path.Combine(path, "dev")).Select(f => (DatasetPart.Dev, f)), (DatasetPart.Test, test)];
        }

        var extension = kind switch
        {
            E2e => ".csv",
            Dart => ".json",
            Xsum or Jsonl => ".jsonl",
            _ => throw new DatasetException($"dataset.path: the {kind} dataset takes a file, not a folder"),
        };
        var inFolder = Directory.GetFiles(path, "*" + extension).Order(StringComparer.Ordinal).ToList();
        string One(string part)
        {
            var matches = inFolder.Where(f => Path.GetFileName(f).Contains(part, StringComparison.OrdinalIgnoreCase)).ToList();
            return matches.Count == 1
                ? matches[0]
                : throw new DatasetException(
                    $"dataset.path: {path} must hold exactly one *{part}*{extension} file, found {matches.Count}{(matches.Count > 0 ? ": " + string.Join(", ", matches.Select(Path.GetFileName)) : "")}");
        }

        return [(DatasetPart.Train, One("train")), (DatasetPart.Test, One("test"))];
    }

    private static string NameOf(string named)
    {
        var rest = named[DatasetNames.Scheme.Length..].Trim();
        var slash = rest.IndexOfAny(['/', '\\']);
        return slash < 0 ? rest : rest[..slash];
    }

    private static List<string> XmlUnder(string dir) =>
        Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.xml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>A single file: its SHA-256 (unchanged from earlier versions). A folder: the hash of the files read (relative path, part, file hash).</summary>
    private static string HashFiles(string path, IReadOnlyList<(string Part, string File)> files)
    {
        if (files is [(DatasetPart.All, var single)])
        {
            return ContentHash.OfFile(single);
        }

        var sb = new StringBuilder("dataset-files/1\n");
        foreach (var (part, file) in files)
        {
            sb.Append(part).Append('\t').Append(Path.GetRelativePath(path, file).Replace('\\', '/')).Append('\t').Append(ContentHash.OfFile(file)).Append('\n');
        }

        return ContentHash.Of(sb.ToString());
    }

    private static IEnumerable<DataEntry> ReadFile(string kind, string root, string part, string file, List<string> notes)
    {
        var stem = Path.ChangeExtension(File.Exists(root) ? Path.GetFileName(file) : Path.GetRelativePath(root, file), null).Replace('\\', '/');
        switch (kind)
        {
            case E2e:
                var idPrefix = part == DatasetPart.All ? "mr" : $"{part}/mr";
                return E2eFormat.ReadCsv(file)
                    .Select((e, i) => new DataEntry($"{idPrefix}{i:D5}", E2eFormat.Linearise(e.Mr), e.Refs))
                    .ToList();

            case Webnlg:
            {
                var entries = WebNlgFormat.ReadFile(file, stem);
                if (part == DatasetPart.Test)
                {
                    return entries.Select(WebNlgFormat.EvaluationEntry).ToList();
                }

                var result = new List<DataEntry>();
                var withoutGood = 0;
                foreach (var e in entries)
                {
                    if (part == DatasetPart.All && !(WebNlgFormat.IsSeen(e.Category) && Bucket(e.Source) < TrainPoolPercent))
                    {
                        // One file split by hash: an input that can never be in the training pool (an unseen category,
                        // or a hash bucket of the evaluation share) is only evaluated, with every lexicalisation.
                        result.Add(WebNlgFormat.EvaluationEntry(e));
                    }
                    else if (WebNlgFormat.TrainingEntry(e) is { } training)
                    {
                        result.Add(training);
                    }
                    else
                    {
                        withoutGood++;
                    }
                }

                if (withoutGood > 0)
                {
                    notes.Add($"{stem}: {withoutGood} entr{(withoutGood == 1 ? "y has" : "ies have")} no comment=\"good\" lexicalisation and {(withoutGood == 1 ? "is" : "are")} not used");
                }

                return result;
            }

            case Dart:
                return DartFormat.Read(file, stem);
            case Xsum:
                return JsonlFormat.ReadXsum(file);
            case Jsonl:
                return JsonlFormat.ReadGeneric(file);
            default:
                throw new DatasetException($"unknown dataset kind '{kind}'");
        }
    }

    private static void CheckUniqueIds(string path, IEnumerable<DatasetPart> parts)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in parts)
        {
            foreach (var e in part.Entries)
            {
                if (!seen.TryAdd(e.Id, part.Name))
                {
                    throw new DatasetException($"{path}: duplicate id '{e.Id}': it occurs in the {seen[e.Id]} file and again in the {part.Name} file");
                }
            }
        }
    }

    private static IReadOnlyDictionary<string, string> CheckOptions(string kind, IReadOnlyDictionary<string, string> options)
    {
        switch (kind)
        {
            case SyntheticE2e:
                SyntheticOptions(options);
                return options;
            case Jsonl:
                foreach (var key in options.Keys.Where(k => k != EvaluationSplits.HoldoutTopicsOption))
                {
                    throw new DatasetException($"dataset.options.{key}: unknown option for jsonl (known: {EvaluationSplits.HoldoutTopicsOption})");
                }

                if (options.ContainsKey(EvaluationSplits.HoldoutTopicsOption) && EvaluationSplits.HoldoutTopics(options).Count == 0)
                {
                    throw new DatasetException($"dataset.options.{EvaluationSplits.HoldoutTopicsOption}: give one or more topics, comma-separated");
                }

                return options;
            default:
                if (options.Count > 0)
                {
                    throw new DatasetException($"dataset.options: the {kind} reader takes no options (got {string.Join(", ", options.Keys)})");
                }

                return options;
        }
    }

    private static void CheckSplits(string kind, IReadOnlyDictionary<string, string> options, IReadOnlyList<string> splits)
    {
        var known = EvaluationSplits.For(kind, options).Select(s => s.Name).ToList();
        for (var i = 0; i < splits.Count; i++)
        {
            if (!known.Contains(splits[i]))
            {
                var hint = kind == Jsonl && !options.ContainsKey(EvaluationSplits.HoldoutTopicsOption)
                    ? $" (topic splits need dataset.options.{EvaluationSplits.HoldoutTopicsOption})"
                    : "";
                throw new DatasetException($"dataset.splits[{i}]: unknown split '{splits[i]}' for {kind} (known: {string.Join(", ", known)}){hint}");
            }
        }

        var duplicate = splits.GroupBy(s => s, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new DatasetException($"dataset.splits: split '{duplicate.Key}' is listed twice");
        }
    }

    private static (int Count, int Seed) SyntheticOptions(IReadOnlyDictionary<string, string> options)
    {
        foreach (var key in options.Keys.Where(k => k is not ("mrs" or "seed")))
        {
            throw new DatasetException($"dataset.options.{key}: unknown option for synthetic-e2e (known: mrs, seed)");
        }

        var count = ParseOption(options, "mrs", 400, 10, 100_000);
        var seed = ParseOption(options, "seed", 0, 0, int.MaxValue);
        return (count, seed);
    }

    private static int ParseOption(IReadOnlyDictionary<string, string> options, string key, int fallback, int min, int max)
    {
        if (!options.TryGetValue(key, out var text))
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new DatasetException($"dataset.options.{key}: expected an integer between {min} and {max}, got '{text}'");
        }

        return value;
    }

    private static IReadOnlyList<DataEntry> SyntheticE2e_Generate(int count, int seed) => Synthetic.SyntheticE2e.Generate(count, seed);

    private static string HashEntries(IEnumerable<DataEntry> entries)
    {
        var sb = new StringBuilder(Synthetic.SyntheticE2e.Version).Append('\n');
        foreach (var e in entries)
        {
            sb.Append(e.Id).Append('\t').Append(e.Source);
            foreach (var r in e.References)
            {
                sb.Append('\t').Append(r);
            }

            sb.Append('\n');
        }

        return ContentHash.Of(sb.ToString());
    }
}
