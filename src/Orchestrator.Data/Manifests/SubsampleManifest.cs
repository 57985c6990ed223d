using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;

namespace Orchestrator.Data.Manifests;

/// <summary>
/// The example ids chosen for one (dataset, pool, size, subsample, manifest seed, nested) — a pure function of
/// those inputs (algorithm <c>rank-sha256/1</c>): every pool id is ranked by SHA-256 of
/// <c>dataset-hash|pool|seed|subsample|size-or-"nested"|id</c>; the first <c>size</c> ids form the training set
/// and the next 30% the disjoint dev set. With <c>nested</c> the ranking ignores the size, so a smaller
/// training set is a prefix of a larger one.
/// </summary>
public sealed record SubsampleManifest(
    [property: JsonPropertyName("algorithm")] string Algorithm,
    [property: JsonPropertyName("dataset_hash")] string DatasetHash,
    [property: JsonPropertyName("pool")] string Pool,
    [property: JsonPropertyName("size")] int Size,
    [property: JsonPropertyName("subsample")] int Subsample,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("nested")] bool Nested,
    [property: JsonPropertyName("train_ids")] IReadOnlyList<string> TrainIds,
    [property: JsonPropertyName("dev_ids")] IReadOnlyList<string> DevIds)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Hash of the manifest's canonical JSON; every result row carries it.</summary>
    [JsonIgnore]
    public string Hash => ContentHash.Of(ToJson());

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static SubsampleManifest Create(string datasetHash, string pool, IReadOnlyCollection<string> poolIds,
        int size, int subsample, int seed, bool nested)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        ArgumentOutOfRangeException.ThrowIfNegative(subsample);
        var dev = CellExpander.DevSize(size);
        if ((long)size + dev > poolIds.Count)
        {
            throw new DatasetException(
                $"size {size} needs {size} training + {dev} dev examples, but the '{pool}' pool has only {poolIds.Count}");
        }

        var sizePart = nested ? "nested" : size.ToString(CultureInfo.InvariantCulture);
        var prefix = $"{datasetHash}|{pool}|{seed.ToString(CultureInfo.InvariantCulture)}|{subsample.ToString(CultureInfo.InvariantCulture)}|{sizePart}|";
        var ranked = poolIds
            .Select(id => (Rank: ContentHash.Of(prefix + id), Id: id))
            .OrderBy(x => x.Rank, StringComparer.Ordinal)
            .ThenBy(x => x.Id, StringComparer.Ordinal)
            .Select(x => x.Id)
            .ToList();
        return new SubsampleManifest(CellExpander.ManifestAlgorithm, datasetHash, pool, size, subsample, seed, nested,
            ranked.Take(size).ToList(), ranked.Skip(size).Take(dev).ToList());
    }

    /// <summary>
    /// The manifest of a cell: drawn from the training pool of the cell's split (for most datasets every split
    /// trains on the same pool; XSUM's news-to-sports and within-news, and held-out topics, train on fewer inputs).
    /// </summary>
    public static SubsampleManifest For(CellDefinition cell, LoadedDataset data) =>
        Create(data.ContentHash, cell.Manifest.Pool, data.ForSplit(cell.Split).TrainingExamples.Select(e => e.Id).ToList(),
            cell.Size, cell.Subsample, cell.Manifest.Seed, cell.Manifest.Nested);

    /// <summary>The manifest as a small JSON file: its canonical fields plus <c>hash</c> (the hash of those fields).</summary>
    public string ToFileJson()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ToJson())!.AsObject();
        node["hash"] = Hash;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Writes <see cref="ToFileJson"/> to <paramref name="path"/>.</summary>
    public void Save(string path) => File.WriteAllText(path, ToFileJson());

    /// <summary>Reads a manifest file and checks that its stored hash matches its content.</summary>
    public static SubsampleManifest Load(string path)
    {
        var text = TextFiles.ReadUtf8(path);
        SubsampleManifest? manifest;
        string? stored;
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(text)?.AsObject() ?? throw new DatasetException($"{path}: empty manifest");
            stored = node["hash"]?.GetValue<string>();
            node.Remove("hash");
            manifest = node.Deserialize<SubsampleManifest>();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new DatasetException($"{path}: not a subsample manifest ({ex.Message})", ex);
        }

        if (manifest is null || manifest.TrainIds is null || manifest.DevIds is null || stored is null)
        {
            throw new DatasetException($"{path}: not a subsample manifest (missing fields or hash)");
        }

        return manifest.Hash == stored
            ? manifest
            : throw new DatasetException($"{path}: the manifest's content does not match its hash (stored {stored[..Math.Min(12, stored.Length)]}, computed {manifest.Hash[..12]}); it was edited");
    }
}
