using Orchestrator.Core.Cells;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Data.Json;
using Orchestrator.Data.Manifests;

namespace Orchestrator.Core.Tests;

public sealed class ManifestFileTests
{
    private static LoadedDataset E2eExcerpt()
    {
        var spec = new DatasetSpec("e2e", TestData.Get("e2e/devset-excerpt.csv"), ["default"], null, new Dictionary<string, string>());
        return DatasetCatalog.Load(DatasetCatalog.Resolve(spec, "/"));
    }

    [Fact]
    public void Manifests_of_the_e2e_excerpt_are_pure_functions_of_their_inputs()
    {
        var a = E2eExcerpt();
        var b = E2eExcerpt();
        // The file's SHA-256 (tests/data/e2e/README.md) is the dataset hash.
        Assert.Equal("17c274aaec0aa1a120886f373e39592858bf222f4fe33931655f8bf9780a82ab", a.ContentHash);
        var ids = a.TrainingExamples.Select(e => e.Id).ToList();
        var m1 = SubsampleManifest.Create(a.ContentHash, "train", ids, 50, 0, 0, nested: false);
        var m2 = SubsampleManifest.Create(b.ContentHash, "train", b.TrainingExamples.Select(e => e.Id).Reverse().ToList(), 50, 0, 0, nested: false);
        Assert.Equal(m1.TrainIds, m2.TrainIds);
        Assert.Equal(m1.DevIds, m2.DevIds);
        Assert.Equal(m1.Hash, m2.Hash);
        Assert.Equal(50, m1.TrainIds.Count);
        Assert.Equal(15, m1.DevIds.Count);
        Assert.Empty(m1.TrainIds.Intersect(m1.DevIds));
        Assert.All(m1.TrainIds.Concat(m1.DevIds), id => Assert.Contains(id, ids));

        // The ranking is SHA-256 of "dataset-hash|pool|seed|subsample|size|id" (rank-sha256/1), smallest first:
        // recomputed here from that definition.
        var expected = ids.OrderBy(id => ContentHash.Of($"{a.ContentHash}|train|0|0|50|{id}"), StringComparer.Ordinal).ThenBy(id => id, StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Take(50), m1.TrainIds);
        Assert.Equal(expected.Skip(50).Take(15), m1.DevIds);
    }

    [Fact]
    public void Nested_manifests_of_the_e2e_excerpt_grow_by_prefix()
    {
        var data = E2eExcerpt();
        var ids = data.TrainingExamples.Select(e => e.Id).ToList();
        var sizes = new[] { 10, 20, 40, 80 };
        var manifests = sizes.Select(n => SubsampleManifest.Create(data.ContentHash, "train", ids, n, 3, 7, nested: true)).ToList();
        for (var i = 1; i < manifests.Count; i++)
        {
            Assert.Equal(manifests[i - 1].TrainIds, manifests[i].TrainIds.Take(sizes[i - 1]));
        }

        Assert.All(manifests, m => Assert.Equal((int)Math.Round(m.Size * 0.3, MidpointRounding.AwayFromZero), m.DevIds.Count));
    }

    [Fact]
    public void A_manifest_file_carries_its_hash_and_an_edited_file_is_refused()
    {
        using var dir = new TempFolder();
        var ids = Enumerable.Range(0, 100).Select(i => $"ex{i}").ToList();
        var manifest = SubsampleManifest.Create("h", "train", ids, 20, 1, 2, nested: false);
        var path = Path.Combine(dir.Path, "m.json");
        manifest.Save(path);
        var text = File.ReadAllText(path);
        Assert.Contains($"\"hash\": \"{manifest.Hash}\"", text);

        var loaded = SubsampleManifest.Load(path);
        Assert.Equal(manifest.TrainIds, loaded.TrainIds);
        Assert.Equal(manifest.DevIds, loaded.DevIds);
        Assert.Equal(manifest.Hash, loaded.Hash);

        File.WriteAllText(path, text.Replace($"\"{manifest.TrainIds[0]}\"", "\"ex-edited\""));
        var ex = Assert.Throws<DatasetException>(() => SubsampleManifest.Load(path));
        Assert.Contains("does not match its hash", ex.Message);
    }

    [Fact]
    public void A_cell_draws_its_manifest_from_the_training_pool_of_its_split()
    {
        using var dir = new TempFolder();
        var entries = Enumerable.Range(0, 200).Select(i => new DataEntry($"e{i}", $"input {i}", [$"output {i}"], i % 2 == 0 ? "held" : "kept"));
        var path = dir.Write("d.jsonl", JsonlFormat.ToGenericJsonl(entries));
        var options = new Dictionary<string, string> { ["holdout_topics"] = "held" };
        var identity = DatasetCatalog.Resolve(new DatasetSpec("jsonl", path, ["unseen"], null, options), "/");
        var data = DatasetCatalog.Load(identity);
        var cell = new CellDefinition(CellDefinition.CurrentCodeVersion, identity, "unseen", new ModelIdentity("tiny", null, 0, "m"), "finetune",
            new SortedDictionary<string, string>(), 20, 0, new ManifestIdentity(CellExpander.ManifestAlgorithm, CellExpander.TrainingPool, 0, false, 0.3),
            0, new TrainingSettings(1e-3, 10, 10, 0, 5, 0), new DecodingSettings("greedy", 1, 10, 1));
        var manifest = SubsampleManifest.For(cell, data);
        var categoryOf = data.TrainPool.ToDictionary(e => e.Id, e => e.Category);
        Assert.All(manifest.TrainIds.Concat(manifest.DevIds), id => Assert.Equal("kept", categoryOf[data.Example(id).EntryId]));
        Assert.Equal(100, data.EvalFor("unseen").Count);
    }
}
