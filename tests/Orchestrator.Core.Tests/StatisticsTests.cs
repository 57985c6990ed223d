using Orchestrator.Core.Aggregation;

namespace Orchestrator.Core.Tests;

/// <summary>The statistics of the results tables, against hand-computed and published table values.</summary>
public sealed class StatisticsTests
{
    [Theory]
    [InlineData(1, 12.7062)]
    [InlineData(2, 4.3027)]
    [InlineData(4, 2.7764)]
    [InlineData(9, 2.2622)]
    [InlineData(30, 2.0423)]
    [InlineData(120, 1.9799)]
    public void T_quantile_0975_matches_the_table(int df, double expected)
    {
        Assert.Equal(expected, StudentT.Quantile(0.975, df), 4);
        Assert.Equal(-expected, StudentT.Quantile(0.025, df), 4);
        Assert.Equal(expected, StudentT.Critical(0.95, df), 4);
    }

    [Theory]
    [InlineData(0.95, 1, 6.3138)]
    [InlineData(0.995, 5, 4.0321)]
    [InlineData(0.9, 10, 1.3722)]
    public void Other_quantiles_match_the_table(double p, int df, double expected) =>
        Assert.Equal(expected, StudentT.Quantile(p, df), 4);

    [Fact]
    public void The_cdf_is_symmetric_and_inverts_the_quantile()
    {
        Assert.Equal(0.5, StudentT.Cdf(0, 3), 12);
        Assert.Equal(0.75, StudentT.Cdf(1, 1), 12); // Cauchy: ½ + atan(1)/π
        Assert.Equal(0.975, StudentT.Cdf(12.7062047362, 1), 9);
        Assert.Equal(1 - StudentT.Cdf(1.3, 7), StudentT.Cdf(-1.3, 7), 12);
        Assert.Equal(0.3, StudentT.Cdf(StudentT.Quantile(0.3, 6), 6), 10);
        Assert.Equal(0, StudentT.Quantile(0.5, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => StudentT.Quantile(1, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => StudentT.Quantile(0.9, 0));
    }

    [Fact]
    public void Incomplete_beta_matches_closed_forms()
    {
        Assert.Equal(0.3, SpecialFunctions.RegularizedIncompleteBeta(1, 1, 0.3), 12);           // I_x(1,1) = x
        Assert.Equal(11.0 / 16, SpecialFunctions.RegularizedIncompleteBeta(2, 3, 0.5), 12);     // Σ C(4,j) x^j (1−x)^(4−j), j ≥ 2
        Assert.Equal(1 - Math.Pow(0.8, 3), SpecialFunctions.RegularizedIncompleteBeta(1, 3, 0.2), 12); // 1 − (1−x)^b
        Assert.Equal(0, SpecialFunctions.RegularizedIncompleteBeta(2, 2, 0));
        Assert.Equal(1, SpecialFunctions.RegularizedIncompleteBeta(2, 2, 1));
        Assert.Equal(Math.Log(24), SpecialFunctions.LogGamma(5), 12);
        Assert.Equal(0.5 * Math.Log(Math.PI), SpecialFunctions.LogGamma(0.5), 12);
    }

    [Fact]
    public void Mean_sd_ci_min_max_of_three_values()
    {
        var s = MetricStatistics.Of([10, 12, 14]);

        Assert.Equal(3, s.N);
        Assert.Equal(12, s.Mean, 12);
        Assert.Equal(2, s.StdDev, 12);                 // √((4 + 0 + 4) / 2)
        var half = 4.302652729749464 * 2 / Math.Sqrt(3); // t(0.975, 2) · sd / √n = 4.96828
        Assert.Equal(4.96828, half, 5);
        Assert.Equal(12 - half, s.CiLow, 6);
        Assert.Equal(12 + half, s.CiHigh, 6);
        Assert.Equal((10.0, 14.0), (s.Min, s.Max));
    }

    [Fact]
    public void Mean_sd_ci_of_eight_values()
    {
        var s = MetricStatistics.Of([2, 4, 4, 4, 5, 5, 7, 9]);

        Assert.Equal(5, s.Mean, 12);
        Assert.Equal(Math.Sqrt(32.0 / 7), s.StdDev, 12);  // Σ(x − 5)² = 32
        Assert.Equal(1.78748, s.HalfWidth, 4);           // 2.364624 · 2.138090 / √8
    }

    [Fact]
    public void One_value_has_a_mean_but_no_sd_or_interval_and_none_has_nothing()
    {
        var one = MetricStatistics.Of([42.5]);
        Assert.Equal((1, 42.5, 42.5, 42.5), (one.N, one.Mean, one.Min, one.Max));
        Assert.True(double.IsNaN(one.StdDev) && double.IsNaN(one.CiLow) && double.IsNaN(one.CiHigh) && double.IsNaN(one.HalfWidth));

        var none = MetricStatistics.Of([]);
        Assert.Equal(0, none.N);
        Assert.True(double.IsNaN(none.Mean) && double.IsNaN(none.Min));
        Assert.Equal(none, MetricStatistics.FromSums(0, 0, 0, double.NaN, double.NaN));
    }

    [Fact]
    public void Sums_give_the_same_statistics_as_the_values()
    {
        double[] values = [31.2, 29.8, 33.1, 30.4, 28.9];
        var direct = MetricStatistics.Of(values);
        var sums = MetricStatistics.FromSums(values.Length, values.Sum(), values.Sum(v => v * v), values.Min(), values.Max());

        Assert.Equal(direct.Mean, sums.Mean, 10);
        Assert.Equal(direct.StdDev, sums.StdDev, 9);
        Assert.Equal(direct.CiLow, sums.CiLow, 9);
        Assert.Equal(direct.CiHigh, sums.CiHigh, 9);
        Assert.Equal(0, MetricStatistics.FromSums(3, 3 * 70.1, 3 * 70.1 * 70.1, 70.1, 70.1).StdDev); // equal values: no rounding residue
    }

    [Fact]
    public void Summaries_flag_incomplete_points_and_regroup_by_merging_sums()
    {
        PointSums P(string method, int size, int expected, int failed, params double[] v) =>
            new("e2e", "default", method, size, "bleu", expected, failed, v.Length, v.Sum(), v.Sum(x => x * x),
                v.Length == 0 ? double.NaN : v.Min(), v.Length == 0 ? double.NaN : v.Max());
        var points = new[]
        {
            P("prefix", 50, 2, 0, 10, 14),
            P("prefix", 100, 3, 1, 20, 22),  // one failed: incomplete
            P("finetune", 50, 1, 0),           // nothing yet
            P("finetune", 50, 1, 0, 5) with { Metric = "ter" },
        };

        var fine = PointAggregation.Summarize(points, metric: "bleu");
        Assert.Equal(3, fine.Count);
        Assert.Equal(["finetune", "prefix", "prefix"], fine.Select(p => p.Method));
        Assert.False(fine[0].Complete);
        Assert.Equal(0, fine[0].Statistics.N);
        Assert.True(fine[1].Complete);
        Assert.Equal(12, fine[1].Statistics.Mean);
        Assert.False(fine[2].Complete);
        Assert.Equal((2, 3, 1), (fine[2].Statistics.N, fine[2].Expected, fine[2].Failed));

        var byMethod = PointAggregation.Summarize(points, PointKeys.Method, "bleu");
        var prefix = byMethod.Single(p => p.Method == "prefix");
        Assert.Equal((null, null, (int?)null), (prefix.Dataset, prefix.Split, prefix.Size));
        Assert.Equal((4, 5, 1), (prefix.Statistics.N, prefix.Expected, prefix.Failed));
        Assert.Equal(16.5, prefix.Statistics.Mean, 12);
        Assert.Equal(MetricStatistics.Of([10, 14, 20, 22]).StdDev, prefix.Statistics.StdDev, 9);
        Assert.Equal((10.0, 22.0), (prefix.Statistics.Min, prefix.Statistics.Max));

        Assert.Equal(2, PointAggregation.Summarize(points).Select(p => p.Metric).Distinct().Count());
        Assert.Equal(PointKeys.Method | PointKeys.Size | PointKeys.Split, PointAggregation.ParseKeys("method, size,split"));
        Assert.Throws<ArgumentException>(() => PointAggregation.ParseKeys("method,seed"));
    }

    [Fact]
    public void Paired_differences_give_the_mean_difference_its_ci_and_the_number_of_pairs()
    {
        var pairs = new[]
        {
            new PairedObservation("e2e", "default", "prefix", 50, 0, 0, 30, 25),
            new PairedObservation("e2e", "default", "prefix", 50, 0, 1, 28, 27),
            new PairedObservation("e2e", "default", "prefix", 100, 0, 0, 35, 35),
        };

        var rows = PairedComparison.CompareMethods(pairs);

        Assert.Equal(2, rows.Count);
        var d = rows[0].Difference;
        Assert.Equal((50, 2, 3.0), (rows[0].Size, d.N, d.Mean));
        Assert.Equal(Math.Sqrt(8), d.StdDev, 12);                    // differences 5 and 1
        Assert.Equal(12.7062 * Math.Sqrt(8) / Math.Sqrt(2), d.HalfWidth, 3); // t(0.975, 1) · sd / √2 = 25.4124
        Assert.Equal((1, 0.0), (rows[1].Difference.N, rows[1].Difference.Mean));
        Assert.True(double.IsNaN(rows[1].Difference.CiLow));

        var overall = Assert.Single(PairedComparison.Summarize(pairs, PointKeys.None)).Difference;
        Assert.Equal((3, 2.0), (overall.N, overall.Mean));
    }

    [Fact]
    public void The_generalization_gap_is_seen_minus_unseen_per_method_and_size()
    {
        var pairs = new[]
        {
            new PairedObservation("webnlg", "seen", "prefix", 50, 0, 0, 60, 40),
            new PairedObservation("webnlg", "seen", "prefix", 50, 0, 1, 58, 44),
            new PairedObservation("webnlg", "seen", "finetune", 50, 0, 0, 62, 30),
        };

        var gap = PairedComparison.GeneralizationGap(pairs);

        Assert.Equal([("finetune", 32.0, 1), ("prefix", 17.0, 2)], gap.Select(g => (g.Method!, g.Difference.Mean, g.Difference.N)));
        Assert.All(gap, g => Assert.Null(g.Split));
    }
}
