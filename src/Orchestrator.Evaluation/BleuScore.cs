namespace Orchestrator.Evaluation;

/// <summary>
/// A BLEU result with the fields of sacreBLEU's <c>BLEUScore</c>. <see cref="Score"/> and
/// <see cref="Precisions"/> are on the 0..100 scale.
/// </summary>
/// <param name="Score">BLEU, 0..100.</param>
/// <param name="Counts">Matched (clipped) n-gram counts, one per order 1..max order.</param>
/// <param name="Totals">Hypothesis n-gram counts, one per order.</param>
/// <param name="Precisions">Per-order precisions (after smoothing), 0..100.</param>
/// <param name="BrevityPenalty">The brevity penalty.</param>
/// <param name="SysLen">Total hypothesis length in tokens.</param>
/// <param name="RefLen">Total effective (closest) reference length in tokens.</param>
/// <param name="Signature">The sacreBLEU signature, e.g. <c>nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0</c>.</param>
public sealed record BleuScore(
    double Score,
    IReadOnlyList<int> Counts,
    IReadOnlyList<int> Totals,
    IReadOnlyList<double> Precisions,
    double BrevityPenalty,
    int SysLen,
    int RefLen,
    string Signature)
{
    /// <summary>hyp_len / ref_len as sacreBLEU reports it (0 when ref_len is 0).</summary>
    public double Ratio => RefLen != 0 ? (double)SysLen / RefLen : 0.0;

    /// <summary>
    /// sacreBLEU's <c>str(score)</c>, e.g.
    /// <c>BLEU = 58.81 87.7/68.0/51.7/38.8 (BP = 1.000 ratio = 1.011 hyp_len = 5101 ref_len = 5044)</c>.
    /// </summary>
    /// <param name="width">Decimals of the main score (sacreBLEU's <c>width</c>, default 2).</param>
    public string Format(int width = 2)
    {
        var precisions = string.Join('/', Precisions.Select(p => PythonText.FormatFixed(p, 1)));
        return $"BLEU = {PythonText.FormatFixed(Score, width)} {precisions} " +
               $"(BP = {PythonText.FormatFixed(BrevityPenalty, 3)} " +
               $"ratio = {PythonText.FormatFixed(Ratio, 3)} hyp_len = {SysLen} ref_len = {RefLen})";
    }

    /// <summary>sacreBLEU's <c>format(signature=...)</c>: <c>BLEU|&lt;signature&gt; = ...</c>.</summary>
    public string FormatWithSignature(int width = 2) =>
        "BLEU|" + Signature + Format(width)["BLEU".Length..];

    /// <inheritdoc />
    public override string ToString() => Format();
}
