namespace Orchestrator.Results.Tests;

/// <summary>The selection log: a sweep's choices, per method and size, kept as first made and read back in order.</summary>
public abstract partial class ResultStoreContract
{
    [Fact]
    public async Task Selection_choices_are_kept_as_first_made_per_method_and_size_and_go_with_their_sweep()
    {
        var at = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        await Store.SaveSweepAsync(Sweep("sel", "select", T0, 1), [Cell("a")]);
        await Store.SaveSweepAsync(Sweep("other", "select2", T0, 1), [Cell("b")]);
        await Store.SaveSelectionsAsync([
            new StoredSelection(K("sel"), "lora", null, new Dictionary<string, string> { ["options.r"] = "8", ["learning_rate"] = "0.001" }, """{"n": 2}""", at),
            new StoredSelection(K("sel"), "finetune", 10, new Dictionary<string, string> { ["learning_rate"] = "0.0001" }, "{}", at),
            new StoredSelection(K("sel"), "finetune", 20, new Dictionary<string, string> { ["learning_rate"] = "0.001" }, "{}", at),
        ]);
        // A second decision for the same scope does not replace the one the grid ran with.
        await Store.SaveSelectionsAsync([new StoredSelection(K("sel"), "lora", null, new Dictionary<string, string> { ["learning_rate"] = "0.1" }, "{}", at.AddHours(1))]);

        var stored = await Store.GetSelectionsAsync(K("sel"));
        Assert.Equal([("finetune", (int?)10), ("finetune", 20), ("lora", null)], stored.Select(s => (s.Method, s.Size)));
        var lora = stored[2];
        Assert.Equal([("learning_rate", "0.001"), ("options.r", "8")], lora.Chosen.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal(("""{"n": 2}""", at), (lora.EvidenceJson, lora.DecidedAt));
        Assert.Empty(await Store.GetSelectionsAsync(K("other")));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            Store.SaveSelectionsAsync([new StoredSelection(K("sel"), "lora", 0, new Dictionary<string, string>(), "{}", at)]));
    }
}
