using System.Globalization;
using System.Text;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Data.E2E;
using Orchestrator.Data.Synthetic;

namespace Orchestrator.Data;

/// <summary>
/// Resolves a spec's dataset to its content identity (at submit time) and loads it (on the worker),
/// checking that the content has not changed in between.
/// </summary>
public static class DatasetCatalog
{
    public const string SyntheticE2e = "synthetic-e2e";
    public const string E2e = "e2e";

    /// <summary>Share of inputs (by hash of their text) that go to the training pool; the rest is the evaluation set.</summary>
    public const int TrainPoolPercent = 80;

    public static IReadOnlyCollection<string> Kinds { get; } = [SyntheticE2e, E2e];

    public static DatasetIdentity Resolve(DatasetSpec spec, string baseDirectory)
    {
        switch (spec.Kind)
        {
            case SyntheticE2e:
            {
                if (spec.Path is not null)
                {
                    throw new DatasetException("dataset.path: the synthetic-e2e dataset is generated; it takes no path");
                }

                var (count, seed) = SyntheticOptions(spec.Options);
                var options = new SortedDictionary<string, string>(StringComparer.Ordinal)
                {
                    ["mrs"] = count.ToString(CultureInfo.InvariantCulture),
                    ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
                };
                var hash = HashEntries(SyntheticE2e_Generate(count, seed));
                return new DatasetIdentity(SyntheticE2e, null, hash, options, spec.EvalLimit);
            }

            case E2e:
            {
                if (spec.Path is null)
                {
                    throw new DatasetException("dataset.path: the e2e dataset needs the path of its CSV file (columns mr,ref)");
                }

                if (spec.Options.Count > 0)
                {
                    throw new DatasetException($"dataset.options: the e2e reader takes no options (got {string.Join(", ", spec.Options.Keys)})");
                }

                var path = Path.GetFullPath(Path.Combine(baseDirectory, spec.Path));
                if (!File.Exists(path))
                {
                    throw new DatasetException($"dataset.path: file not found: {path}");
                }

                return new DatasetIdentity(E2e, path, ContentHash.OfFile(path), new SortedDictionary<string, string>(StringComparer.Ordinal), spec.EvalLimit);
            }

            default:
                throw new DatasetException($"dataset.kind: unknown dataset kind '{spec.Kind}' (known: {string.Join(", ", Kinds)})");
        }
    }

    public static LoadedDataset Load(DatasetIdentity id)
    {
        IReadOnlyList<DataEntry> entries;
        string hash;
        switch (id.Kind)
        {
            case SyntheticE2e:
                var (count, seed) = SyntheticOptions(id.Options);
                entries = SyntheticE2e_Generate(count, seed);
                hash = HashEntries(entries);
                break;
            case E2e:
                var path = id.Path ?? throw new DatasetException("e2e dataset without a path");
                if (!File.Exists(path))
                {
                    throw new DatasetException($"dataset file not found on this machine: {path}");
                }

                hash = ContentHash.OfFile(path);
                entries = E2eFormat.ReadCsv(path)
                    .Select((e, i) => new DataEntry($"mr{i:D5}", E2eFormat.Linearise(e.Mr), e.Refs))
                    .ToList();
                break;
            default:
                throw new DatasetException($"unknown dataset kind '{id.Kind}'");
        }

        if (hash != id.ContentHash)
        {
            throw new DatasetException(
                $"dataset {id.Kind} {id.Path} changed since the sweep was submitted (content hash {hash[..12]}, expected {id.ContentHash[..12]}); resubmit the spec");
        }

        return Split(id.Kind, hash, entries, id.EvalLimit);
    }

    /// <summary>
    /// Splits inputs once, deterministically, by a hash of their text: ~80% training pool, ~20% evaluation
    /// (each evaluation input with all its references; none of them is ever trained on).
    /// </summary>
    public static LoadedDataset Split(string kind, string hash, IReadOnlyList<DataEntry> entries, int? evalLimit)
    {
        var train = new List<DataEntry>();
        var eval = new List<(string Rank, DataEntry Entry)>();
        foreach (var e in entries)
        {
            var rank = ContentHash.Of(e.Source);
            var bucket = (int)(Convert.ToUInt32(rank[..8], 16) % 100);
            if (bucket < TrainPoolPercent)
            {
                train.Add(e);
            }
            else
            {
                eval.Add((rank, e));
            }
        }

        var evalSet = eval.OrderBy(x => x.Rank, StringComparer.Ordinal).Select(x => x.Entry);
        if (evalLimit is { } limit)
        {
            evalSet = evalSet.Take(limit);
        }

        return new LoadedDataset(kind, hash, train, evalSet.ToList());
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
