using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Decoding;

/// <summary>
/// Beam search with a key/value cache, batched over sources (each source with <see cref="DecodingOptions.BeamSize"/> beams).
/// <para>
/// Each step scores every beam's continuations by the model's log-probability (banned continuations get −∞ without
/// renormalising the others: ids the tokenizer has no text for, <see cref="DecodingOptions.BannedTokenIds"/>, and the end token
/// before <see cref="DecodingOptions.MinNewTokens"/> generated tokens or <see cref="DecodingOptions.MinLength"/> prompt +
/// generated tokens), keeps
/// the 2K best (beam, token) candidates of a source and walks them in order: an end token among the first K closes a
/// hypothesis (without the end token) scored Σ log p / L^<see cref="DecodingOptions.LengthPenalty"/>; other candidates fill
/// the K beams of the next step. With <see cref="LengthNormalization.NewTokens"/> L = generated tokens including the end
/// token, and a source is finished when it has K hypotheses and its best running beam, normalised by its current length,
/// does not beat the worst of them. With <see cref="LengthNormalization.FullSequence"/> (transformers 3.x) L = prompt +
/// generated tokens without the end token (a running beam at the limit: prompt + its tokens), and a source is finished
/// when it has K hypotheses and its best candidate of the step over prompt + tokens so far does not beat the worst. At
/// <see cref="DecodingOptions.MaxNewTokens"/> (or when the positions are used up) its running beams become hypotheses. The
/// output is the best hypothesis. This follows Hugging Face's beam search without early stopping, so beam size 1 is greedy
/// decoding.
/// </para>
/// </summary>
public static class BeamSearchDecoder
{
    /// <summary>Decodes every source; returns the best hypotheses as trimmed texts, in source order.</summary>
    public static IReadOnlyList<string> Decode(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        DecodingOptions options,
        IPeftMethod? method = null,
        CancellationToken cancellationToken = default)
    {
        var ids = DecodeIds(model, tokenizer, sources, options, method, cancellationToken);
        return ids.Select(generated => tokenizer.Decode(generated).Trim()).ToArray();
    }

    /// <summary>The best hypothesis of every source (token ids without the end token), in source order.</summary>
    public static IReadOnlyList<IReadOnlyList<int>> DecodeIds(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        DecodingOptions options,
        IPeftMethod? method = null,
        CancellationToken cancellationToken = default) =>
        DecodeHypotheses(model, tokenizer, sources, options, method, cancellationToken).Select(h => h.Tokens).ToArray();

    /// <summary>The best hypothesis of every source with its score, in source order.</summary>
    public static IReadOnlyList<BeamHypothesis> DecodeHypotheses(
        CausalLm model,
        ITextTokenizer tokenizer,
        IReadOnlyList<string> sources,
        DecodingOptions options,
        IPeftMethod? method = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int[][] prompts = DecodingPrompts.Encode(model, tokenizer, sources, method);
        var outputs = new BeamHypothesis[sources.Count];
        using var evalMode = PeftForward.EvalMode(method, model);
        using var noGrad = no_grad();
        for (int start = 0; start < prompts.Length; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, prompts.Length - start);
            BeamHypothesis[] best = DecodeBatch(model, method, tokenizer, prompts.AsSpan(start, count).ToArray(), options, cancellationToken);
            best.CopyTo(outputs, start);
        }

        return outputs;
    }

    private static BeamHypothesis[] DecodeBatch(
        CausalLm model,
        IPeftMethod? method,
        ITextTokenizer tokenizer,
        int[][] prompts,
        DecodingOptions options,
        CancellationToken cancellationToken)
    {
        int n = prompts.Length;
        int k = options.BeamSize;
        double alpha = options.LengthPenalty;
        int endOfText = tokenizer.EndOfText;
        var finished = Enumerable.Range(0, n).Select(_ => new List<BeamHypothesis>()).ToArray();
        using var lm = new CachedLm(model, method);
        int positions = lm.Positions;
        var (ids, promptPads, t) = DecodingPrompts.LeftPad(prompts, tokenizer.Pad);

        // Active sources and their beams: beam j of active source i is cache row i·K + j.
        int[] sourceOf = Enumerable.Range(0, n).ToArray();
        var beams = new List<int>[n * k];
        var scores = new double[n * k];
        for (int i = 0; i < n * k; i++)
        {
            beams[i] = [];
            scores[i] = i % k == 0 ? 0 : double.NegativeInfinity; // all beams start equal: expand only the first
        }

        int[] pads = Enumerable.Range(0, n * k).Select(i => promptPads[i / k]).ToArray();
        int length = t;
        Tensor logits;
        using (var scope = NewDisposeScope())
        {
            logits = lm.Prefill(ids, promptPads, t).repeat_interleave(k, 0).DetachFromDisposeScope();
        }

        var expand = new long[n * k];
        for (int i = 0; i < n * k; i++) expand[i] = i / k;
        lm.Select(expand);

        try
        {
            for (int step = 0; ; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int active = sourceOf.Length;
                double[] candidateScores;
                long[] candidateIndices;
                long vocab = logits.shape[1];
                using (var scope = NewDisposeScope())
                {
                    // Log-probabilities of the model, then the bans (as Hugging Face: banned tokens get -inf, the rest is not renormalised).
                    Tensor logp = nn.functional.log_softmax(logits.to_type(ScalarType.Float64), 1);
                    CachedLm.Constrain(logp, tokenizer, options.BannedTokenIds, banEnd: step < options.MinNewTokens);
                    int[] rowSources = sourceOf;
                    CachedLm.BanEndBelowMinLength(logp, tokenizer, options.MinLength, row => prompts[rowSources[row / k]].Length, step);
                    Tensor total = logp + tensor(scores, ScalarType.Float64, logp.device).unsqueeze(1);
                    var (values, indices) = total.view(active, k * vocab).topk(Math.Min(2 * k, (int)(k * vocab)), 1);
                    candidateScores = values.cpu().data<double>().ToArray();
                    candidateIndices = indices.cpu().data<long>().ToArray();
                }

                int width = candidateIndices.Length / active;
                var nextRows = new List<long>(active * k);
                var nextTokens = new List<long>(active * k);
                var nextScores = new List<double>(active * k);
                var nextBeams = new List<List<int>>(active * k);
                var nextPads = new List<int>(active * k);
                var nextSources = new List<int>(active);
                int generated = step + 1;
                bool full = options.Normalization == LengthNormalization.FullSequence;
                for (int i = 0; i < active; i++)
                {
                    int source = sourceOf[i];
                    // Lengths of a hypothesis closed here (end token excluded with the full sequence) and of a running one.
                    int prompt = prompts[source].Length;
                    double closedNorm = Math.Pow(full ? prompt + step : generated, alpha);
                    double norm = Math.Pow(full ? prompt + generated : generated, alpha);
                    var chosen = new List<(int Beam, int Token, double Score)>(k);
                    for (int c = 0; c < width && chosen.Count < k; c++)
                    {
                        long flat = candidateIndices[i * width + c];
                        int beam = (int)(flat / vocab);
                        int token = (int)(flat % vocab);
                        double score = candidateScores[i * width + c];
                        if (double.IsNegativeInfinity(score))
                        {
                            break;
                        }

                        if (token == endOfText)
                        {
                            if (c < k)
                            {
                                finished[source].Add(new BeamHypothesis(beams[i * k + beam].ToArray(), score / closedNorm));
                            }

                            continue;
                        }

                        chosen.Add((beam, token, score));
                    }

                    bool last = generated >= options.MaxNewTokens || prompts[source].Length + generated >= positions;
                    bool done;
                    if (last || chosen.Count == 0)
                    {
                        foreach (var (beam, token, score) in chosen)
                        {
                            finished[source].Add(new BeamHypothesis([.. beams[i * k + beam], token], score / norm));
                        }

                        done = true;
                    }
                    else if (full)
                    {
                        // transformers 3.x: the best of this step's candidates (end tokens included) over the length so far.
                        double best = candidateScores[i * width];
                        done = finished[source].Count >= k && best / closedNorm <= WorstOfBest(finished[source], k);
                    }
                    else
                    {
                        done = finished[source].Count >= k && chosen.Max(x => x.Score) / norm <= WorstOfBest(finished[source], k);
                    }

                    if (done)
                    {
                        continue;
                    }

                    nextSources.Add(source);
                    for (int j = 0; j < k; j++)
                    {
                        // Fewer than K finite candidates (heavy bans): repeat the last one with a score that never wins.
                        var (beam, token, score) = j < chosen.Count ? chosen[j] : (chosen[^1].Beam, chosen[^1].Token, double.NegativeInfinity);
                        nextRows.Add(i * k + beam);
                        nextTokens.Add(token);
                        nextScores.Add(score);
                        nextBeams.Add([.. beams[i * k + beam], token]);
                        nextPads.Add(pads[i * k + beam]);
                    }
                }

                if (nextSources.Count == 0)
                {
                    break;
                }

                lm.Select(nextRows.ToArray());
                sourceOf = nextSources.ToArray();
                beams = nextBeams.ToArray();
                scores = nextScores.ToArray();
                pads = nextPads.ToArray();
                logits.Dispose();
                using (var scope = NewDisposeScope())
                {
                    logits = lm.Step(nextTokens.ToArray(), pads, length).DetachFromDisposeScope();
                }

                length++;
            }
        }
        finally
        {
            logits.Dispose();
        }

        return finished.Select(list => list.Count == 0 ? new BeamHypothesis([], double.NegativeInfinity) : list.MaxBy(h => h.Score)!).ToArray();
    }

    private static double WorstOfBest(List<BeamHypothesis> hypotheses, int k) =>
        hypotheses.Select(h => h.Score).OrderDescending().Take(k).Min();
}

/// <summary>A finished beam: generated token ids (without the end token) and its length-normalised log-probability.</summary>
public sealed record BeamHypothesis(IReadOnlyList<int> Tokens, double Score);
