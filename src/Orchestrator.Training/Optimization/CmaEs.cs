namespace Orchestrator.Training.Optimization;

/// <summary>How <see cref="CmaEs"/> models the covariance matrix.</summary>
public enum CmaCovariance
{
    /// <summary>A full n×n covariance, eigendecomposed lazily (every ⌈λ / ((c1 + cμ)·n·10)⌉ generations): O(n²) per sample.</summary>
    Full,

    /// <summary>
    /// Separable CMA-ES (Ros &amp; Hansen 2008): a diagonal covariance, O(n) per sample and no eigendecomposition; learning
    /// rates c1 and cμ are multiplied by (n + 2)/3. Suited to large n; cannot learn correlations between coordinates.
    /// </summary>
    Diagonal,
}

/// <summary>
/// The Covariance Matrix Adaptation Evolution Strategy for minimisation, (μ/μ_W, λ)-CMA-ES as in Hansen, "The CMA Evolution
/// Strategy: A Tutorial" (arXiv:1604.00772), with positive recombination weights only (no active update), all in double
/// precision. Ask/tell interface: <see cref="Ask"/> samples λ candidates x_k = m + σ·B·D·z_k, z_k ~ N(0, I); <see cref="Tell"/>
/// takes their function values and updates the mean, the evolution paths p_σ and p_c, the step size σ (cumulative step-size
/// adaptation) and the covariance C (rank-one and rank-μ updates).
/// <para>
/// Defaults (Tutorial, Table 1): λ = 4 + ⌊3 ln n⌋; μ = ⌊λ/2⌋; w_i ∝ ln((λ+1)/2) − ln i for i ≤ μ, normalised to sum 1;
/// μ_eff = 1/Σw_i²; c_σ = (μ_eff + 2)/(n + μ_eff + 5); d_σ = 1 + 2·max(0, √((μ_eff − 1)/(n + 1)) − 1) + c_σ;
/// c_c = (4 + μ_eff/n)/(n + 4 + 2μ_eff/n); c1 = 2/((n + 1.3)² + μ_eff); cμ = min(1 − c1, 2(μ_eff − 2 + 1/μ_eff)/((n + 2)² + μ_eff));
/// c_m = 1; h_σ stalls the p_c update while ‖p_σ‖/√(1 − (1 − c_σ)^(2(g+1))) ≥ (1.4 + 2/(n + 1))·E‖N(0, I)‖.
/// </para>
/// <para>Deterministic for a given seed (its own SplitMix64 generator and Box–Muller normals).</para>
/// </summary>
public sealed class CmaEs
{
    private readonly int _n;
    private readonly double[] _weights;
    private readonly double _cSigma, _dSigma, _cc, _c1, _cMu, _chiN;
    private readonly double[] _mean;
    private readonly double[] _pSigma;
    private readonly double[] _pc;
    private readonly double[] _c;      // full: n×n row-major (upper and lower kept symmetric); diagonal: n
    private readonly double[] _b;      // full: eigenvectors as columns, n×n row-major; diagonal: unused
    private readonly double[] _d;      // √eigenvalues (full) or √diag(C) (diagonal)
    private readonly double[] _zScratch;
    private ulong _rng;
    private double? _spareNormal;
    private double[][]? _asked;
    private int _eigenGeneration;

    /// <param name="initialMean">m⁽⁰⁾ (copied).</param>
    /// <param name="sigma">σ⁽⁰⁾ &gt; 0, the initial step size.</param>
    /// <param name="populationSize">λ ≥ 2; null: 4 + ⌊3 ln n⌋.</param>
    /// <param name="seed">Seed of the sampling.</param>
    /// <param name="covariance">Full or diagonal (separable) covariance.</param>
    public CmaEs(double[] initialMean, double sigma, int? populationSize = null, long seed = 0, CmaCovariance covariance = CmaCovariance.Full)
    {
        ArgumentNullException.ThrowIfNull(initialMean);
        if (initialMean.Length == 0) throw new ArgumentException("The dimension must be at least 1.", nameof(initialMean));
        if (!(sigma > 0) || !double.IsFinite(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be positive and finite.");
        if (initialMean.Any(v => !double.IsFinite(v))) throw new ArgumentException("The initial mean must be finite.", nameof(initialMean));
        _n = initialMean.Length;
        int lambda = populationSize ?? DefaultPopulationSize(_n);
        if (lambda < 2) throw new ArgumentOutOfRangeException(nameof(populationSize), lambda, "The population size must be at least 2.");
        Covariance = covariance;
        PopulationSize = lambda;
        Mu = lambda / 2;
        Sigma = sigma;

        double n = _n;
        _weights = new double[Mu];
        for (int i = 0; i < Mu; i++) _weights[i] = Math.Log((lambda + 1) / 2.0) - Math.Log(i + 1);
        double sum = _weights.Sum();
        for (int i = 0; i < Mu; i++) _weights[i] /= sum;
        MuEff = 1 / _weights.Sum(w => w * w);

        _cSigma = (MuEff + 2) / (n + MuEff + 5);
        _dSigma = 1 + 2 * Math.Max(0, Math.Sqrt((MuEff - 1) / (n + 1)) - 1) + _cSigma;
        _cc = (4 + MuEff / n) / (n + 4 + 2 * MuEff / n);
        double c1 = 2 / ((n + 1.3) * (n + 1.3) + MuEff);
        double cMu = Math.Min(1 - c1, 2 * (MuEff - 2 + 1 / MuEff) / ((n + 2) * (n + 2) + MuEff));
        if (covariance == CmaCovariance.Diagonal)
        {
            c1 *= (n + 2) / 3;
            cMu = Math.Min(1 - c1, cMu * (n + 2) / 3);
        }

        _c1 = c1;
        _cMu = cMu;
        _chiN = Math.Sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));

        _mean = (double[])initialMean.Clone();
        _pSigma = new double[_n];
        _pc = new double[_n];
        _d = Enumerable.Repeat(1.0, _n).ToArray();
        _zScratch = new double[_n];
        if (covariance == CmaCovariance.Full)
        {
            _c = new double[_n * _n];
            _b = new double[_n * _n];
            for (int i = 0; i < _n; i++)
            {
                _c[i * _n + i] = 1;
                _b[i * _n + i] = 1;
            }
        }
        else
        {
            _c = Enumerable.Repeat(1.0, _n).ToArray();
            _b = [];
        }

        _rng = unchecked((ulong)seed ^ 0x6A09E667F3BCC909UL);
    }

    /// <summary>λ = 4 + ⌊3 ln n⌋ (Hansen's default).</summary>
    public static int DefaultPopulationSize(int dimension) => 4 + (int)Math.Floor(3 * Math.Log(dimension));

    public int Dimension => _n;

    /// <summary>λ, the number of candidates per generation.</summary>
    public int PopulationSize { get; }

    /// <summary>μ, the number of selected candidates.</summary>
    public int Mu { get; }

    /// <summary>The variance-effective selection mass μ_eff.</summary>
    public double MuEff { get; }

    public CmaCovariance Covariance { get; }

    /// <summary>The current step size σ.</summary>
    public double Sigma { get; private set; }

    /// <summary>Completed generations (calls of <see cref="Tell"/>).</summary>
    public int Generation { get; private set; }

    /// <summary>Function evaluations told so far (λ per generation).</summary>
    public long Evaluations { get; private set; }

    /// <summary>The current mean m (the distribution's centre; the recommended solution).</summary>
    public double[] Mean => (double[])_mean.Clone();

    /// <summary>The best candidate told so far and its value (null / +∞ before the first generation).</summary>
    public double[]? BestSolution { get; private set; }

    public double BestValue { get; private set; } = double.PositiveInfinity;

    /// <summary>Condition number of C (max/min eigenvalue at the last decomposition, or of its diagonal).</summary>
    public double ConditionNumber
    {
        get
        {
            double max = _d.Max(), min = _d.Min();
            return max * max / (min * min);
        }
    }

    /// <summary>Samples λ candidates of the next generation (new arrays); pass them, evaluated, to <see cref="Tell"/>.</summary>
    public double[][] Ask()
    {
        var candidates = new double[PopulationSize][];
        for (int k = 0; k < PopulationSize; k++)
        {
            for (int i = 0; i < _n; i++) _zScratch[i] = NextNormal() * _d[i];
            var x = new double[_n];
            if (Covariance == CmaCovariance.Full)
            {
                for (int i = 0; i < _n; i++)
                {
                    double s = 0;
                    int row = i * _n;
                    for (int j = 0; j < _n; j++) s += _b[row + j] * _zScratch[j];
                    x[i] = _mean[i] + Sigma * s;
                }
            }
            else
            {
                for (int i = 0; i < _n; i++) x[i] = _mean[i] + Sigma * _zScratch[i];
            }

            candidates[k] = x;
        }

        _asked = candidates;
        return candidates;
    }

    /// <summary>
    /// Updates the distribution from the candidates of the last <see cref="Ask"/> (same arrays, unchanged) and their function
    /// values (lower is better; NaN counts as +∞).
    /// </summary>
    public void Tell(double[][] candidates, double[] values)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(values);
        if (_asked is null || !ReferenceEquals(candidates, _asked))
        {
            throw new InvalidOperationException("Tell takes the candidates returned by the last Ask.");
        }

        if (values.Length != PopulationSize) throw new ArgumentException($"Expected {PopulationSize} values, got {values.Length}.", nameof(values));
        _asked = null;
        int[] order = Enumerable.Range(0, PopulationSize)
            .OrderBy(k => double.IsNaN(values[k]) ? double.PositiveInfinity : values[k])
            .ThenBy(k => k)
            .ToArray();
        if (values[order[0]] < BestValue)
        {
            BestValue = values[order[0]];
            BestSolution = (double[])candidates[order[0]].Clone();
        }

        // y_i = (x_i:λ − m_old)/σ for the μ best; y_w = Σ w_i y_i; m ← m + c_m·σ·y_w (c_m = 1).
        var y = new double[Mu][];
        var yw = new double[_n];
        for (int i = 0; i < Mu; i++)
        {
            double[] x = candidates[order[i]];
            var yi = new double[_n];
            for (int j = 0; j < _n; j++)
            {
                yi[j] = (x[j] - _mean[j]) / Sigma;
                yw[j] += _weights[i] * yi[j];
            }

            y[i] = yi;
        }

        for (int j = 0; j < _n; j++) _mean[j] += Sigma * yw[j];

        // p_σ ← (1 − c_σ)·p_σ + √(c_σ(2 − c_σ)μ_eff)·C^(−1/2)·y_w
        double[] invSqrtCyw = InverseSqrtC(yw);
        double sigmaFactor = Math.Sqrt(_cSigma * (2 - _cSigma) * MuEff);
        double normPs = 0;
        for (int j = 0; j < _n; j++)
        {
            _pSigma[j] = (1 - _cSigma) * _pSigma[j] + sigmaFactor * invSqrtCyw[j];
            normPs += _pSigma[j] * _pSigma[j];
        }

        normPs = Math.Sqrt(normPs);
        Generation++;
        Evaluations += PopulationSize;
        bool hSigma = normPs / Math.Sqrt(1 - Math.Pow(1 - _cSigma, 2.0 * Generation)) < (1.4 + 2.0 / (_n + 1)) * _chiN;

        // p_c ← (1 − c_c)·p_c + h_σ·√(c_c(2 − c_c)μ_eff)·y_w
        double cFactor = hSigma ? Math.Sqrt(_cc * (2 - _cc) * MuEff) : 0;
        for (int j = 0; j < _n; j++) _pc[j] = (1 - _cc) * _pc[j] + cFactor * yw[j];

        // C ← (1 + c1·δ(h_σ) − c1 − cμ·Σw)·C + c1·p_c·p_cᵀ + cμ·Σ w_i·y_i·y_iᵀ  (Σw = 1)
        double delta = hSigma ? 0 : _cc * (2 - _cc);
        double keep = 1 + _c1 * delta - _c1 - _cMu;
        if (Covariance == CmaCovariance.Full)
        {
            for (int r = 0; r < _n; r++)
            {
                for (int col = 0; col <= r; col++)
                {
                    double rankMu = 0;
                    for (int i = 0; i < Mu; i++) rankMu += _weights[i] * y[i][r] * y[i][col];
                    double v = keep * _c[r * _n + col] + _c1 * _pc[r] * _pc[col] + _cMu * rankMu;
                    _c[r * _n + col] = v;
                    _c[col * _n + r] = v;
                }
            }
        }
        else
        {
            for (int j = 0; j < _n; j++)
            {
                double rankMu = 0;
                for (int i = 0; i < Mu; i++) rankMu += _weights[i] * y[i][j] * y[i][j];
                _c[j] = keep * _c[j] + _c1 * _pc[j] * _pc[j] + _cMu * rankMu;
                _d[j] = Math.Sqrt(Math.Max(_c[j], double.Epsilon));
            }
        }

        // σ ← σ·exp((c_σ/d_σ)·(‖p_σ‖/E‖N(0, I)‖ − 1))
        Sigma *= Math.Exp(_cSigma / _dSigma * (normPs / _chiN - 1));

        if (Covariance == CmaCovariance.Full && Generation - _eigenGeneration > PopulationSize / (_c1 + _cMu) / _n / 10)
        {
            Decompose();
        }
    }

    /// <summary>Runs ask/tell on <paramref name="function"/> until <paramref name="maxEvaluations"/> or the best value ≤ <paramref name="target"/>.</summary>
    public double Minimize(Func<double[], double> function, long maxEvaluations, double target = double.NegativeInfinity)
    {
        ArgumentNullException.ThrowIfNull(function);
        while (Evaluations + PopulationSize <= maxEvaluations && BestValue > target)
        {
            double[][] candidates = Ask();
            Tell(candidates, candidates.Select(function).ToArray());
        }

        return BestValue;
    }

    /// <summary>C^(−1/2)·v = B·D⁻¹·Bᵀ·v (with the B, D of the last decomposition).</summary>
    private double[] InverseSqrtC(double[] v)
    {
        var result = new double[_n];
        if (Covariance == CmaCovariance.Diagonal)
        {
            // D was updated with C at the previous Tell; use it as the current estimate.
            for (int j = 0; j < _n; j++) result[j] = v[j] / _d[j];
            return result;
        }

        var t = new double[_n];
        for (int k = 0; k < _n; k++)
        {
            double s = 0;
            for (int i = 0; i < _n; i++) s += _b[i * _n + k] * v[i];
            t[k] = s / _d[k];
        }

        for (int i = 0; i < _n; i++)
        {
            double s = 0;
            int row = i * _n;
            for (int k = 0; k < _n; k++) s += _b[row + k] * t[k];
            result[i] = s;
        }

        return result;
    }

    private void Decompose()
    {
        _eigenGeneration = Generation;
        var eigenvalues = new double[_n];
        SymmetricEigen.Decompose((double[])_c.Clone(), _n, eigenvalues, _b);
        double max = eigenvalues.Max();
        for (int i = 0; i < _n; i++)
        {
            // Guard against round-off: C is positive definite in exact arithmetic.
            _d[i] = Math.Sqrt(Math.Max(eigenvalues[i], max * 1e-20 + double.Epsilon));
        }
    }

    private ulong NextBits()
    {
        ulong z = _rng += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private double NextUniform() => ((NextBits() >> 11) + 0.5) * (1.0 / (1UL << 53)); // (0, 1)

    private double NextNormal()
    {
        if (_spareNormal is { } spare)
        {
            _spareNormal = null;
            return spare;
        }

        double r = Math.Sqrt(-2 * Math.Log(NextUniform()));
        double angle = 2 * Math.PI * NextUniform();
        _spareNormal = r * Math.Sin(angle);
        return r * Math.Cos(angle);
    }
}

/// <summary>Eigendecomposition of a real symmetric matrix by the cyclic Jacobi method (double precision).</summary>
public static class SymmetricEigen
{
    /// <summary>
    /// Decomposes the symmetric n×n matrix <paramref name="a"/> (row-major; destroyed) into <paramref name="eigenvalues"/>
    /// and orthonormal eigenvectors, the columns of <paramref name="vectors"/> (row-major n×n): A = V·diag(λ)·Vᵀ.
    /// </summary>
    public static void Decompose(double[] a, int n, double[] eigenvalues, double[] vectors)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(eigenvalues);
        ArgumentNullException.ThrowIfNull(vectors);
        if (a.Length != n * n || vectors.Length != n * n || eigenvalues.Length != n) throw new ArgumentException("Sizes do not match n.");
        Array.Clear(vectors);
        var b = new double[n];
        var z = new double[n];
        for (int i = 0; i < n; i++)
        {
            vectors[i * n + i] = 1;
            b[i] = eigenvalues[i] = a[i * n + i];
        }

        for (int sweep = 1; sweep <= 100; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++) off += Math.Abs(a[p * n + q]);
            }

            if (off == 0) return;
            double threshold = sweep < 4 ? 0.2 * off / (n * n) : 0;
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    double g = 100 * Math.Abs(apq);
                    if (sweep > 4 && Math.Abs(eigenvalues[p]) + g == Math.Abs(eigenvalues[p]) && Math.Abs(eigenvalues[q]) + g == Math.Abs(eigenvalues[q]))
                    {
                        a[p * n + q] = 0;
                        continue;
                    }

                    if (Math.Abs(apq) <= threshold) continue;
                    double h = eigenvalues[q] - eigenvalues[p];
                    double t;
                    if (Math.Abs(h) + g == Math.Abs(h))
                    {
                        t = apq / h;
                    }
                    else
                    {
                        double theta = 0.5 * h / apq;
                        t = 1 / (Math.Abs(theta) + Math.Sqrt(1 + theta * theta));
                        if (theta < 0) t = -t;
                    }

                    double c = 1 / Math.Sqrt(1 + t * t), s = t * c, tau = s / (1 + c);
                    h = t * apq;
                    z[p] -= h;
                    z[q] += h;
                    eigenvalues[p] -= h;
                    eigenvalues[q] += h;
                    a[p * n + q] = 0;
                    for (int j = 0; j < p; j++) Rotate(a, j * n + p, j * n + q, s, tau);
                    for (int j = p + 1; j < q; j++) Rotate(a, p * n + j, j * n + q, s, tau);
                    for (int j = q + 1; j < n; j++) Rotate(a, p * n + j, q * n + j, s, tau);
                    for (int j = 0; j < n; j++) Rotate(vectors, j * n + p, j * n + q, s, tau);
                }
            }

            for (int i = 0; i < n; i++)
            {
                b[i] += z[i];
                eigenvalues[i] = b[i];
                z[i] = 0;
            }
        }

        throw new InvalidOperationException("The Jacobi eigenvalue iteration did not converge in 100 sweeps.");
    }

    private static void Rotate(double[] m, int ij, int kl, double s, double tau)
    {
        double g = m[ij], h = m[kl];
        m[ij] = g - s * (h + g * tau);
        m[kl] = h + s * (g - h * tau);
    }
}
