using Orchestrator.Training.Optimization;

namespace Orchestrator.Training.Tests.Optimization;

/// <summary>CMA-ES on standard test functions (fixed seeds, so the budgets below are exact, with a margin).</summary>
public sealed class CmaEsTests(ITestOutputHelper output)
{
    private static double Sphere(double[] x) => x.Sum(v => v * v);

    private static double Rosenbrock(double[] x)
    {
        double f = 0;
        for (int i = 0; i < x.Length - 1; i++)
        {
            double a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
            f += 100 * a * a + b * b;
        }

        return f;
    }

    [Fact]
    public void Default_strategy_parameters_follow_the_tutorial()
    {
        var cma = new CmaEs(new double[10], 1.0);
        Assert.Equal(10, cma.PopulationSize); // 4 + ⌊3 ln 10⌋ = 4 + 6
        Assert.Equal(5, cma.Mu);
        Assert.Equal(3.1672, cma.MuEff, 3);
        Assert.Equal(22, CmaEs.DefaultPopulationSize(500));
    }

    [Theory]
    [InlineData(CmaCovariance.Full, 2_500)]
    [InlineData(CmaCovariance.Diagonal, 2_500)]
    public void Sphere_in_dimension_10_converges_below_1e_10(CmaCovariance covariance, int budget)
    {
        var cma = new CmaEs(Enumerable.Repeat(3.0, 10).ToArray(), 2.0, seed: 1, covariance: covariance);
        double best = cma.Minimize(Sphere, budget, target: 1e-10);
        output.WriteLine($"{covariance}: f = {best:E3} after {cma.Evaluations} evaluations, sigma {cma.Sigma:E2}");
        Assert.True(best < 1e-10, $"f = {best} after {cma.Evaluations} evaluations");
        Assert.True(Sphere(cma.Mean) < 1e-8);
    }

    [Fact]
    public void Rosenbrock_in_dimension_10_reaches_the_optimum()
    {
        var cma = new CmaEs(new double[10], 0.5, seed: 2);
        double best = cma.Minimize(Rosenbrock, 20_000, target: 1e-10);
        output.WriteLine($"f = {best:E3} after {cma.Evaluations} evaluations, condition {cma.ConditionNumber:E2}");
        Assert.True(best < 1e-8, $"f = {best} after {cma.Evaluations} evaluations");
        Assert.All(cma.BestSolution!, v => Assert.Equal(1.0, v, 3));
    }

    [Fact]
    public void The_same_seed_gives_the_same_run_and_another_seed_another()
    {
        double[] Run(long seed)
        {
            var cma = new CmaEs(Enumerable.Repeat(1.0, 5).ToArray(), 0.5, seed: seed);
            cma.Minimize(Rosenbrock, 300);
            return cma.Mean;
        }

        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void Tell_needs_the_candidates_of_the_last_ask()
    {
        var cma = new CmaEs(new double[3], 1.0);
        var asked = cma.Ask();
        Assert.Throws<InvalidOperationException>(() => cma.Tell(asked.Select(x => (double[])x.Clone()).ToArray(), new double[asked.Length]));
        Assert.Throws<ArgumentException>(() => cma.Tell(asked, new double[1]));
    }

    [Fact]
    public void Jacobi_eigendecomposition_reconstructs_a_symmetric_matrix()
    {
        const int n = 40;
        var random = new Random(3);
        var m = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double v = random.NextDouble() * 2 - 1;
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }

        var values = new double[n];
        var vectors = new double[n * n];
        SymmetricEigen.Decompose((double[])m.Clone(), n, values, vectors);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double reconstructed = 0, identity = 0;
                for (int k = 0; k < n; k++)
                {
                    reconstructed += vectors[i * n + k] * values[k] * vectors[j * n + k];
                    identity += vectors[k * n + i] * vectors[k * n + j];
                }

                Assert.Equal(m[i * n + j], reconstructed, 10);
                Assert.Equal(i == j ? 1.0 : 0.0, identity, 10);
            }
        }
    }
}
