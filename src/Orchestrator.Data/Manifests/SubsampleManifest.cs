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
        if (size + dev > poolIds.Count)
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

    public static SubsampleManifest For(CellDefinition cell, LoadedDataset data) =>
        Create(data.ContentHash, cell.Manifest.Pool, data.TrainingExamples.Select(e => e.Id).ToList(),
            cell.Size, cell.Subsample, cell.Manifest.Seed, cell.Manifest.Nested);
}
