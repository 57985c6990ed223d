using Orchestrator.Core.Curves;

namespace Orchestrator.Core.Tests;

public class TrainingCurveTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(299)]
    [InlineData(300)]
    [InlineData(301)]
    [InlineData(5000)]
    public void Training_losses_are_subsampled_to_at_most_300_evenly_spaced_steps_with_the_first_and_the_last(int steps)
    {
        var losses = Enumerable.Range(1, steps).Select(i => 10.0 / i).ToList();

        var curve = TrainingCurve.From(losses, [], steps, steps);

        Assert.Equal(Math.Min(steps, TrainingCurve.MaxTrainPoints), curve.Train.Count);
        Assert.Equal(1, curve.Train[0].Step);
        Assert.Equal(steps, curve.Train[^1].Step);
        Assert.All(curve.Train.Zip(curve.Train.Skip(1)), p => Assert.True(p.Second.Step > p.First.Step));
        Assert.All(curve.Train, p => Assert.Equal(10.0 / p.Step, p.Loss)); // each point is its step's own loss, not an average
        if (steps > TrainingCurve.MaxTrainPoints)
        {
            var gaps = curve.Train.Zip(curve.Train.Skip(1), (a, b) => b.Step - a.Step).ToList();
            Assert.True(gaps.Max() - gaps.Min() <= 1, "evenly spaced");
        }
    }

    [Fact]
    public void The_json_round_trips_with_dev_losses_the_kept_step_and_undefined_values()
    {
        var curve = TrainingCurve.From([2.5, 2.0, double.NaN, 1.5], [(2, 2.25), (4, 2.4)], keptStep: 2, steps: 4);

        var json = curve.ToJson();
        var back = TrainingCurve.Parse(json);

        Assert.Equal("""{"steps":4,"kept_step":2,"train":[[1,2.5],[2,2],[3,null],[4,1.5]],"dev":[[2,2.25],[4,2.4]]}""", json);
        Assert.Equal(curve.Train, back.Train);
        Assert.Equal(curve.Dev, back.Dev);
        Assert.Equal((4, 2), (back.Steps, back.KeptStep));
        Assert.Equal(2.25, back.KeptDevLoss);
        Assert.Equal(2.0, back.KeptTrainLoss);
    }

    [Fact]
    public void Text_that_is_not_a_curve_is_refused_with_a_format_error()
    {
        Assert.Throws<FormatException>(() => TrainingCurve.Parse("""{"steps":3}"""));
        Assert.Throws<FormatException>(() => TrainingCurve.Parse("not json"));
    }
}
