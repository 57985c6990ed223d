using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Peft.Ptuning;

/// <summary>
/// P-tuning v1 (Liu et al.): P virtual-token embeddings Embedding(P, d) (N(0,1)) pass through a prompt encoder and are
/// placed before the input embeddings (like prompt tuning). Encoders (as PEFT's P_TUNING): <c>lstm</c> (default) — a
/// 2-layer bidirectional LSTM with h units per direction, then Linear(2h, 2h)–ReLU–Linear(2h, d), h = d/2 by default as in
/// the original code; or <c>mlp</c> — Linear(d, h)–ReLU–Linear(h, h)–ReLU–Linear(h, d), h = d by default. The encoder
/// exists only while training: a checkpoint stores its output, <c>prompt_embeddings</c> [P, d].
/// </summary>
public sealed class PtuningMethod : PeftMethodBase
{
    /// <summary>Eval: virtual tokens only, trained as Li &amp; Liang trained prefix-tuning.</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "ptuning";
    public const string StoredName = "prompt_embeddings";

    private readonly PromptHooks _hooks;
    private Parameter? _embedding;
    private LSTM? _lstm;
    private List<Parameter>? _lstmParameters;
    private PeftLinear[] _head = [];
    private Parameter? _table;
    private Tensor? _materialised;
    private int _length;

    private PtuningMethod(PeftOptionReader options) : base(options)
    {
        _length = options.Int("length", 10, "number of virtual tokens P");
        Encoder = options.Choice("encoder", "lstm", "prompt encoder", "lstm", "mlp");
        ConfiguredHidden = options.IntOrKeyword("hidden", "auto", "encoder width h (auto: d/2 per LSTM direction, d for the MLP)");
        EncoderDropout = options.Rate("dropout", 0.0, "dropout between the LSTM layers while training");
        _hooks = new PromptHooks(this);
    }

    public string Encoder { get; }

    public int? ConfiguredHidden { get; }

    public double EncoderDropout { get; }

    public int Length => _length;

    public static PtuningMethod Create(PeftOptionReader options) => new(options);

    /// <summary>The encoder width h for a model width <paramref name="width"/>.</summary>
    public int HiddenFor(int width) => ConfiguredHidden ?? (Encoder == "lstm" ? Math.Max(1, width / 2) : width);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long d = config.Width, h = HiddenFor(config.Width), p = Length;
        long encoder;
        if (Encoder == "lstm")
        {
            long layer1 = 4 * h * d + 4 * h * h + 8 * h;
            long layer2 = 4 * h * 2 * h + 4 * h * h + 8 * h;
            encoder = 2 * (layer1 + layer2) + (2 * h * 2 * h + 2 * h) + (2 * h * d + d);
        }
        else
        {
            encoder = (d * h + h) + (h * h + h) + (h * d + d);
        }

        return new ParameterCounts(p * d + encoder, p * d);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
        int d = config.Width, h = HiddenFor(d);
        using var generator = NewGenerator(context, model);
        _embedding = Own(new Parameter(empty(Length, d, device: model.Device)));
        PeftInit.Normal(_embedding, 1.0, generator);
        var trainable = new List<Parameter> { _embedding };
        if (Encoder == "lstm")
        {
            _lstm = Own(LSTM(d, h, numLayers: 2, bias: true, batchFirst: true, dropout: EncoderDropout, bidirectional: true, device: model.Device));
            _lstmParameters = _lstm.parameters().ToList();
            foreach (var p in _lstmParameters)
            {
                PeftInit.Uniform(p, 1.0 / Math.Sqrt(h), generator); // PyTorch's LSTM default
                p.requires_grad = true;
                trainable.Add(p);
            }

            _head = [new PeftLinear(2 * h, 2 * h, true, model.Device), new PeftLinear(2 * h, d, true, model.Device)];
        }
        else
        {
            _head = [new PeftLinear(d, h, true, model.Device), new PeftLinear(h, h, true, model.Device), new PeftLinear(h, d, true, model.Device)];
        }

        foreach (var layer in _head)
        {
            Own(layer).InitDefault(generator);
            trainable.AddRange(layer.parameters());
        }

        return trainable;
    }

    /// <summary>The encoder's output [P, d] (the stored table in the inference form).</summary>
    private Tensor Encode(bool training)
    {
        if (_table is not null) return _table.alias();
        using var scope = NewDisposeScope();
        Tensor x;
        if (_lstm is not null)
        {
            _lstm.train(training);
            var (output, hn, cn) = _lstm.forward(_embedding!.unsqueeze(0), null);
            x = output.squeeze(0);
            x = functional.relu(_head[0].forward(x));
            x = _head[1].forward(x);
        }
        else
        {
            x = functional.relu(_head[0].forward(_embedding!));
            x = functional.relu(_head[1].forward(x));
            x = _head[2].forward(x);
        }

        return x.MoveToOuterDisposeScope();
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        if (stored.TryGetValue(StoredName, out Tensor? table) && table.dim() == 2) _length = (int)table.shape[0];
        _table = Own(new Parameter(empty(Length, model.Shape.Width, device: model.Device), requires_grad: false));
        CopyStored([new(StoredName, _table)], stored);
    }

    protected override void OnDispose()
    {
        _materialised?.Dispose();
        _materialised = null;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors()
    {
        if (_table is not null) return [new(StoredName, _table)];
        using var noGrad = no_grad();
        _materialised?.Dispose();
        using (NewDisposeScope())
        {
            _materialised = Encode(training: false).detach().clone().DetachFromDisposeScope();
        }

        return [new(StoredName, _materialised)];
    }

    private sealed class PromptHooks(PtuningMethod method) : Gpt2Hooks
    {
        public override int VirtualTokens => method.Length;

        public override Tensor? Prompt(long batchSize, bool training) => method.Encode(training).unsqueeze(0);
    }
}
