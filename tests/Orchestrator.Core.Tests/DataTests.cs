using Orchestrator.Core.Hashing;
using Orchestrator.Data;
using Orchestrator.Data.E2E;
using Orchestrator.Data.Manifests;
using Orchestrator.Data.Synthetic;

namespace Orchestrator.Core.Tests;

public sealed class DataTests
{
    [Fact]
    public void Synthetic_data_is_deterministic_and_has_several_distinct_references_per_mr()
    {
        var a = SyntheticE2e.Generate(200, 7);
        var b = SyntheticE2e.Generate(200, 7);
        var c = SyntheticE2e.Generate(200, 8);
        Assert.Equal(a.Select(e => e.Source + string.Concat(e.References)), b.Select(e => e.Source + string.Concat(e.References)));
        Assert.NotEqual(a.Select(e => e.Source), c.Select(e => e.Source));
        Assert.Equal(200, a.Select(e => e.Source).Distinct().Count());
        Assert.All(a, e =>
        {
            Assert.InRange(e.References.Count, 3, 6);
            Assert.Equal(e.References.Count, e.References.Distinct().Count());
            Assert.StartsWith("name : ", e.Source);
            Assert.Contains("eatType : ", e.Source);
            Assert.True(e.Source.Split(" | ").Length >= 3, e.Source);
        });
    }

    [Fact]
    public void Synthetic_references_mention_the_name_and_the_fields_of_their_mr()
    {
        foreach (var entry in SyntheticE2e.Generate(50, 1))
        {
            var fields = entry.Source.Split(" | ").Select(f => f.Split(" : ", 2)).ToDictionary(f => f[0], f => f[1]);
            foreach (var reference in entry.References)
            {
                Assert.Contains(fields["name"], reference);
                if (fields.TryGetValue("near", out var near))
                {
                    Assert.Contains(near, reference);
                }

                if (fields.TryGetValue("area", out var area))
                {
                    Assert.Contains(area, reference);
                }
            }
        }
    }

    [Fact]
    public void E2e_mr_linearisation_follows_the_protocol()
    {
        Assert.Equal("name : The Eagle | eatType : pub | customer rating : 5 out of 5",
            E2eFormat.Linearise("name[The Eagle], eatType[pub], customer rating[5 out of 5]"));
        Assert.Throws<FormatException>(() => E2eFormat.Linearise("no brackets here"));
    }

    [Fact]
    public void E2e_csv_groups_adjacent_references_and_reports_bad_lines()
    {
        var dir = Directory.CreateTempSubdirectory("orch-e2e-");
        try
        {
            var good = Path.Combine(dir.FullName, "good.csv");
            File.WriteAllText(good, "mr,ref\n\"name[A], eatType[pub]\",\"A is a pub, \"\"nice\"\".\"\n\"name[A], eatType[pub]\",A is a pub.\n\"name[B], food[Thai]\",\"B serves Thai\nfood.\"\n");
            var entries = E2eFormat.ReadCsv(good);
            Assert.Equal(2, entries.Count);
            Assert.Equal(["A is a pub, \"nice\".", "A is a pub."], entries[0].Refs);
            Assert.Equal("B serves Thai\nfood.", Assert.Single(entries[1].Refs));

            var unclosed = Path.Combine(dir.FullName, "unclosed.csv");
            File.WriteAllText(unclosed, "mr,ref\n\"name[A]\",ok\n\"name[B]\",\"never closed\n");
            var ex = Assert.Throws<DatasetException>(() => E2eFormat.ReadCsv(unclosed));
            Assert.Contains("unclosed.csv:3", ex.Message);

            var empty = Path.Combine(dir.FullName, "empty.csv");
            File.WriteAllText(empty, "mr,ref\n\"name[A]\",ok\n\"name[B]\",\n");
            Assert.Contains("empty.csv:3: empty ref", Assert.Throws<DatasetException>(() => E2eFormat.ReadCsv(empty)).Message);

            var header = Path.Combine(dir.FullName, "header.csv");
            File.WriteAllText(header, "meaning,text\n");
            Assert.Equal($"{header}:1: expected the header 'mr,ref', found 'meaning,text'", Assert.Throws<DatasetException>(() => E2eFormat.ReadCsv(header)).Message);
            File.WriteAllText(header, "\"name[A]\",A is a pub.\n");
            Assert.Equal($"{header}:1: expected the header 'mr,ref', found 'name[A],A is a pub.'", Assert.Throws<DatasetException>(() => E2eFormat.ReadCsv(header)).Message);

            var latin1 = Path.Combine(dir.FullName, "latin1.csv");
            File.WriteAllBytes(latin1, [.. "mr,ref\n\"name[Caf"u8, 0xE9, .. "]\",x\n"u8]);
            Assert.Contains("UTF-8", Assert.Throws<DatasetException>(() => E2eFormat.ReadCsv(latin1)).Message);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void The_e2e_devset_excerpt_loads_every_reference_of_its_meaning_representations()
    {
        // tests/data/e2e: the header and all 244 rows of the first 25 MRs of devset.csv (counted with Python's csv module).
        var entries = E2eFormat.ReadCsv(TestData.Get("e2e/devset-excerpt.csv"));
        Assert.Equal(25, entries.Count);
        Assert.Equal(244, entries.Sum(e => e.Refs.Count));
        Assert.Equal("name[Alimentum], area[city centre], familyFriendly[no]", entries[0].Mr);
        Assert.Equal("There is a place in the city centre, Alimentum, that is not family-friendly.", entries[0].Refs[0]);
    }

    [Fact]
    public void Train_pool_and_evaluation_set_share_no_input()
    {
        var entries = SyntheticE2e.Generate(300, 3);
        var data = DatasetCatalog.Split("synthetic-e2e", "h", entries, null);
        Assert.Equal(300, data.TrainPool.Count + data.Eval.Count);
        Assert.Empty(data.TrainPool.Select(e => e.Source).Intersect(data.Eval.Select(e => e.Source)));
        Assert.InRange(data.TrainPool.Count, 210, 270);
        var limited = DatasetCatalog.Split("synthetic-e2e", "h", entries, 10);
        Assert.Equal(10, limited.Eval.Count);
        Assert.Equal(data.Eval.Take(10).Select(e => e.Id), limited.Eval.Select(e => e.Id));
    }

    [Fact]
    public void Manifests_are_pure_disjoint_and_sized()
    {
        var ids = Enumerable.Range(0, 400).Select(i => $"ex{i}").ToList();
        var m1 = SubsampleManifest.Create("hash", "train", ids, 50, 0, 0, nested: false);
        var again = SubsampleManifest.Create("hash", "train", ids.AsEnumerable().Reverse().ToList(), 50, 0, 0, nested: false);
        Assert.Equal(m1.TrainIds, again.TrainIds);
        Assert.Equal(m1.Hash, again.Hash);
        Assert.Equal(50, m1.TrainIds.Count);
        Assert.Equal(15, m1.DevIds.Count);
        Assert.Empty(m1.TrainIds.Intersect(m1.DevIds));

        Assert.NotEqual(m1.TrainIds, SubsampleManifest.Create("hash", "train", ids, 50, 1, 0, false).TrainIds);
        Assert.NotEqual(m1.TrainIds, SubsampleManifest.Create("hash", "train", ids, 50, 0, 1, false).TrainIds);
        Assert.NotEqual(m1.TrainIds, SubsampleManifest.Create("other", "train", ids, 50, 0, 0, false).TrainIds);
        Assert.NotEqual(m1.Hash, SubsampleManifest.Create("hash", "train", ids, 50, 1, 0, false).Hash);
    }

    [Fact]
    public void Nested_manifests_make_smaller_sets_prefixes_of_larger_ones()
    {
        var ids = Enumerable.Range(0, 1000).Select(i => $"ex{i}").ToList();
        var small = SubsampleManifest.Create("h", "train", ids, 50, 2, 0, nested: true);
        var large = SubsampleManifest.Create("h", "train", ids, 200, 2, 0, nested: true);
        Assert.Equal(small.TrainIds, large.TrainIds.Take(50));
        var flat = SubsampleManifest.Create("h", "train", ids, 200, 2, 0, nested: false);
        Assert.NotEqual(small.TrainIds, flat.TrainIds.Take(50));
    }

    [Fact]
    public void A_manifest_larger_than_its_pool_is_refused()
    {
        var ids = Enumerable.Range(0, 60).Select(i => $"ex{i}").ToList();
        var ex = Assert.Throws<DatasetException>(() => SubsampleManifest.Create("h", "train", ids, 50, 0, 0, false));
        Assert.Contains("only 60", ex.Message);
    }

    [Fact]
    public void SplitMix64_matches_the_published_reference_sequence()
    {
        // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        var rng = new SplitMix64(1234567);
        Assert.Equal(6457827717110365317UL, rng.NextUInt64());
        Assert.Equal(3203168211198807973UL, rng.NextUInt64());
        Assert.Equal(9817491932198370423UL, rng.NextUInt64());
    }
}
