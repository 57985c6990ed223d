using Orchestrator.Core.Curves;

namespace Orchestrator.Results.Tests;

/// <summary>Training curves stored with results: written with the result, replaced by a newer attempt, never by a stale one.</summary>
public abstract partial class ResultStoreContract
{
    private static string CurveJson(double scale) =>
        TrainingCurve.From(Enumerable.Range(1, 1000).Select(i => scale / i).ToList(), [(500, scale * 0.5), (1000, scale * 0.4)], 1000, 1000).ToJson();

    [Fact]
    public async Task A_curve_is_stored_with_its_result_and_follows_the_attempt_that_wrote_it()
    {
        var first = CurveJson(3.0);
        Assert.True(await Store.UpsertResultAsync(Result("c", 1) with { CurveJson = first }));
        Assert.Equal(first, await Store.GetCurveAsync(K("c")));
        var parsed = TrainingCurve.Parse((await Store.GetCurveAsync(K("c")))!);
        Assert.Equal(TrainingCurve.MaxTrainPoints, parsed.Train.Count);
        Assert.Equal((1, 3.0), (parsed.Train[0].Step, parsed.Train[0].Loss));
        Assert.Equal((1000, 3.0 / 1000), (parsed.Train[^1].Step, parsed.Train[^1].Loss));
        Assert.Equal([500, 1000], parsed.Dev.Select(p => p.Step));

        // A result that is not written (a second success: the first is kept) leaves the stored curve alone.
        Assert.False(await Store.UpsertResultAsync(Result("c", 2) with { CurveJson = CurveJson(9.0) }));
        Assert.Equal(first, await Store.GetCurveAsync(K("c")));

        // A success replacing a failure brings its own curve.
        Assert.True(await Store.UpsertResultAsync(Result("d", 1, CellStatus.Failed, error: "NaN") with { CurveJson = CurveJson(9.0) }));
        var second = CurveJson(5.0);
        Assert.True(await Store.UpsertResultAsync(Result("d", 2) with { CurveJson = second }));
        Assert.Equal(second, await Store.GetCurveAsync(K("d")));
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM cell_curves WHERE cell_key = @k", K("d")));

        // A newer failure without a curve (a rerun that recorded none) must not show the older attempt's.
        Assert.True(await Store.UpsertResultAsync(Result("e", 1, CellStatus.Failed, error: "NaN") with { CurveJson = CurveJson(7.0) }));
        Assert.True(await Store.UpsertResultAsync(Result("e", 2, CellStatus.Failed, error: "OOM")));
        Assert.Null(await Store.GetCurveAsync(K("e")));
        Assert.Null(await Store.GetCurveAsync(K("never-ran")));
    }
}
