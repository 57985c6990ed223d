namespace Orchestrator.Core.Aggregation;

/// <summary>Descriptive statistics of one point's cell scores.</summary>
public sealed record Summary(int N, double Mean, double StdDev, double Min, double Max)
{
    /// <summary>Mean, sample standard deviation (n − 1; NaN for n &lt; 2), min and max.</summary>
    public static Summary Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return new Summary(0, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        // Welford's update: stable for any magnitude.
        double mean = 0, m2 = 0;
        var n = 0;
        foreach (var x in values)
        {
            n++;
            var delta = x - mean;
            mean += delta / n;
            m2 += delta * (x - mean);
        }

        var sd = n > 1 ? Math.Sqrt(m2 / (n - 1)) : double.NaN;
        return new Summary(n, mean, sd, values.Min(), values.Max());
    }
}
