using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Abstractions;
using Orchestrator.Grains;
using Orchestrator.Hosting;
using Orchestrator.Results;

namespace Orchestrator.IntegrationTests;

/// <summary>The results grain on an embedded silo: it caches the database aggregate and refreshes it when results arrive.</summary>
public sealed class ResultsGrainTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-results-grain-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task The_aggregate_is_cached_refreshed_after_a_new_result_and_invalidated_on_request()
    {
        using var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName, RunWorker = false });
        await host.StartAsync();
        try
        {
            var store = host.Services.GetRequiredService<IResultStore>();
            CellDescriptor Cell(string key, int seed) => new(key, "e2e", "default", "finetune", 50, 0, seed, "{}");
            await store.SaveSweepAsync(new SweepRecord("g1", "g", "name: g\n", "h", DateTimeOffset.UtcNow, 2), [Cell("k1", 0), Cell("k2", 1)]);
            Task Write(string key, double bleu, int attempt = 1) => store.UpsertResultAsync(new CellResultRecord(key, attempt, CellStatus.Succeeded,
                new Dictionary<string, double> { ["bleu"] = bleu }, null, "w", "cpu", 1, 1, "{}", [], DateTimeOffset.UtcNow));
            await Write("k1", 10);
            var grain = host.Services.GetRequiredService<IGrainFactory>().GetGrain<IResultsGrain>("g1");

            var first = await grain.GetAsync();
            var point = Assert.Single(first.Points);
            Assert.Equal((1, 2, 10.0), (point.N, point.Expected, point.Sum));
            Assert.Same(first, await grain.GetAsync()); // within the check interval: the cache

            await Write("k2", 20);
            await Task.Delay(ResultsGrain.CheckInterval + TimeSpan.FromMilliseconds(200));
            var second = await grain.GetAsync();
            Assert.Equal((2, 30.0), (second.Points[0].N, second.Points[0].Sum));
            Assert.True(second.Version > first.Version);

            await Task.Delay(ResultsGrain.CheckInterval + TimeSpan.FromMilliseconds(200));
            Assert.Equal(second.Version, (await grain.GetAsync()).Version); // nothing new: no recomputation

            Assert.True(await store.UpdateMetricsAsync("k2", 1, new Dictionary<string, double> { ["bleu"] = 25 }));
            await grain.InvalidateAsync();
            Assert.Equal(35.0, (await grain.GetAsync()).Points[0].Sum);

            var pairs = await grain.GetPairsAsync("bleu", "method", "finetune", "finetune");
            Assert.Equal(2, pairs.Pairs.Count);
            await Assert.ThrowsAsync<ArgumentException>(() => grain.GetPairsAsync("bleu", "seed", "a", "b"));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
