using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orchestrator.Core.Curves;

/// <summary>One point of a training curve: the loss after <see cref="Step"/> updates (NaN where undefined).</summary>
public sealed record CurvePoint(int Step, double Loss);

/// <summary>
/// A cell's training curve as stored with its result: the training loss per step, subsampled to at most
/// <see cref="MaxTrainPoints"/> evenly spaced steps (always the first and the last), the dev loss at each evaluation, and the
/// step whose parameters the cell kept (best dev loss; the last step without a dev set).
/// Stored as compact JSON: <c>{"steps":N,"kept_step":K,"train":[[step,loss],…],"dev":[[step,loss],…]}</c> (undefined losses are null).
/// </summary>
public sealed record TrainingCurve(int Steps, int KeptStep, IReadOnlyList<CurvePoint> Train, IReadOnlyList<CurvePoint> Dev)
{
    /// <summary>A curve keeps at most this many training-loss points (a few kilobytes of JSON per cell).</summary>
    public const int MaxTrainPoints = 300;

    /// <summary>The curve from per-step training losses (<paramref name="stepLosses"/>[i] is step i+1) and dev evaluations.</summary>
    public static TrainingCurve From(IReadOnlyList<double> stepLosses, IEnumerable<(int Step, double Loss)> devLosses, int keptStep, int steps,
        int maxTrainPoints = MaxTrainPoints)
    {
        ArgumentNullException.ThrowIfNull(stepLosses);
        ArgumentNullException.ThrowIfNull(devLosses);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTrainPoints, 2);
        return new TrainingCurve(steps, keptStep,
            Subsample(stepLosses.Count, maxTrainPoints).Select(i => new CurvePoint(i + 1, stepLosses[i])).ToList(),
            devLosses.Select(d => new CurvePoint(d.Step, d.Loss)).ToList());
    }

    /// <summary>At most <paramref name="max"/> indices of 0..count-1, evenly spaced, first and last included, increasing.</summary>
    internal static IEnumerable<int> Subsample(int count, int max)
    {
        if (count <= max)
        {
            for (var i = 0; i < count; i++)
            {
                yield return i;
            }

            yield break;
        }

        var previous = -1;
        for (var k = 0; k < max; k++)
        {
            var index = (int)Math.Round((double)k * (count - 1) / (max - 1), MidpointRounding.AwayFromZero);
            if (index != previous)
            {
                yield return index;
                previous = index;
            }
        }
    }

    /// <summary>The training loss at the kept step, or at the nearest stored step before it (NaN without points).</summary>
    public double KeptTrainLoss => Train.LastOrDefault(p => p.Step <= KeptStep)?.Loss ?? double.NaN;

    /// <summary>The dev loss at the kept step (NaN when the kept step was not an evaluation).</summary>
    public double KeptDevLoss => Dev.FirstOrDefault(p => p.Step == KeptStep)?.Loss ?? double.NaN;

    public string ToJson()
    {
        var text = new StringBuilder();
        text.Append("{\"steps\":").Append(Steps.ToString(CultureInfo.InvariantCulture))
            .Append(",\"kept_step\":").Append(KeptStep.ToString(CultureInfo.InvariantCulture))
            .Append(",\"train\":");
        Points(text, Train);
        text.Append(",\"dev\":");
        Points(text, Dev);
        return text.Append('}').ToString();
    }

    private static void Points(StringBuilder text, IReadOnlyList<CurvePoint> points)
    {
        text.Append('[');
        for (var i = 0; i < points.Count; i++)
        {
            text.Append(i == 0 ? "[" : ",[").Append(points[i].Step.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(double.IsFinite(points[i].Loss) ? points[i].Loss.ToString("R", CultureInfo.InvariantCulture) : "null").Append(']');
        }

        text.Append(']');
    }

    /// <summary>Parses <see cref="ToJson"/>'s form.</summary>
    /// <exception cref="FormatException">The text is not a stored training curve.</exception>
    public static TrainingCurve Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            return new TrainingCurve(root.GetProperty("steps").GetInt32(), root.GetProperty("kept_step").GetInt32(),
                ReadPoints(root.GetProperty("train")), ReadPoints(root.GetProperty("dev")));
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new FormatException($"not a stored training curve: {ex.Message}", ex);
        }
    }

    private static List<CurvePoint> ReadPoints(JsonElement array) =>
        array.EnumerateArray()
            .Select(p => new CurvePoint(p[0].GetInt32(), p[1].ValueKind == JsonValueKind.Null ? double.NaN : p[1].GetDouble()))
            .ToList();
}
