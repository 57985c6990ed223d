namespace Orchestrator.Core.Aggregation;

/// <summary>The Student t distribution with <c>df</c> degrees of freedom.</summary>
public static class StudentT
{
    /// <summary>P(T ≤ t), through the regularized incomplete beta function: for t ≥ 0, 1 − ½ I_{df/(df+t²)}(df/2, ½).</summary>
    public static double Cdf(double t, double df)
    {
        if (!(df > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be positive");
        }

        if (double.IsNaN(t))
        {
            return double.NaN;
        }

        if (double.IsInfinity(t))
        {
            return t > 0 ? 1 : 0;
        }

        var tail = 0.5 * SpecialFunctions.RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
        return t >= 0 ? 1 - tail : tail;
    }

    /// <summary>
    /// The quantile (inverse CDF): the t with P(T ≤ t) = p, for 0 &lt; p &lt; 1. Found by bracketing and bisection on
    /// <see cref="Cdf"/> to about 1e-12 relative precision.
    /// </summary>
    public static double Quantile(double p, double df)
    {
        if (!(df > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be positive");
        }

        if (!(p > 0 && p < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "p must be in (0, 1)");
        }

        if (p == 0.5)
        {
            return 0;
        }

        if (p < 0.5)
        {
            return -Quantile(1 - p, df);
        }

        double lo = 0, hi = 1;
        while (Cdf(hi, df) < p)
        {
            lo = hi;
            hi *= 2;
            if (hi > 1e300)
            {
                return double.PositiveInfinity;
            }
        }

        for (var i = 0; i < 200 && hi - lo > 1e-12 * Math.Max(1, hi); i++)
        {
            var mid = 0.5 * (lo + hi);
            if (Cdf(mid, df) < p)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return 0.5 * (lo + hi);
    }

    /// <summary>The two-sided critical value for a confidence level (0.95 → t(0.975, df)).</summary>
    public static double Critical(double confidence, double df) => Quantile(1 - (1 - confidence) / 2, df);
}
