namespace Orchestrator.Core.Aggregation;

/// <summary>
/// Descriptive statistics of one metric over n values: mean, sample standard deviation (n − 1), the two-sided 95%
/// Student-t confidence interval of the mean (t quantile with n − 1 degrees of freedom), min and max.
/// Undefined values are NaN: everything for n = 0; the standard deviation and the interval for n = 1.
/// </summary>
public sealed record MetricStatistics(int N, double Mean, double StdDev, double CiLow, double CiHigh, double Min, double Max)
{
    /// <summary>The confidence level of <see cref="CiLow"/>..<see cref="CiHigh"/>.</summary>
    public const double Confidence = 0.95;

    public static MetricStatistics Empty { get; } = new(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);

    /// <summary>Half the width of the interval (t · sd / √n); NaN when undefined.</summary>
    public double HalfWidth => (CiHigh - CiLow) / 2;

    /// <summary>The statistics of <paramref name="values"/> (Welford's update: stable for any magnitude).</summary>
    public static MetricStatistics Of(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        double mean = 0, m2 = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        var n = 0;
        foreach (var x in values)
        {
            n++;
            var delta = x - mean;
            mean += delta / n;
            m2 += delta * (x - mean);
            min = Math.Min(min, x);
            max = Math.Max(max, x);
        }

        return n == 0 ? Empty : From(n, mean, n > 1 ? Math.Sqrt(m2 / (n - 1)) : double.NaN, min, max);
    }

    /// <summary>
    /// The statistics from running sums, as a database computes them with GROUP BY (SQLite has no stddev):
    /// variance = (Σx² − (Σx)²/n) / (n − 1), clamped at 0 against rounding.
    /// </summary>
    public static MetricStatistics FromSums(long n, double sum, double sumOfSquares, double min, double max)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (n == 0)
        {
            return Empty;
        }

        var mean = sum / n;
        var sd = double.NaN;
        if (n > 1)
        {
            var variance = (sumOfSquares - sum * sum / n) / (n - 1);
            // Rounding can leave a tiny residue when all values are equal; anything below that is zero.
            sd = variance <= 1e-12 * Math.Max(1, mean * mean) ? 0 : Math.Sqrt(variance);
        }

        return From(checked((int)n), mean, sd, min, max);
    }

    private static MetricStatistics From(int n, double mean, double sd, double min, double max)
    {
        if (n < 2)
        {
            return new MetricStatistics(n, mean, double.NaN, double.NaN, double.NaN, min, max);
        }

        var half = StudentT.Critical(Confidence, n - 1) * sd / Math.Sqrt(n);
        return new MetricStatistics(n, mean, sd, mean - half, mean + half, min, max);
    }
}
