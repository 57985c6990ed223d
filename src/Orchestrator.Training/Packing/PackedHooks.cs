using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Packing;

/// <summary>
/// The hooks of one forward pass over the rows of several trials: member k owns rows [offset_k, offset_k + rows_k) of the
/// batch. Virtual tokens are each member's own (concatenated along the batch); a projection runs the shared base
/// <c>linear</c> once over all rows and applies each member's row-wise changes to its rows only.
/// </summary>
public sealed class PackedHooks : Gpt2Hooks
{
    private readonly (Gpt2Hooks Hooks, long Rows, long Offset)[] _members;
    private readonly long _rows;
    private readonly long[] _sizes;

    /// <exception cref="ArgumentException">No members, a member without rows, members with different numbers of virtual tokens, or hooks that change projections other than row by row.</exception>
    public PackedHooks(IReadOnlyList<(Gpt2Hooks Hooks, long Rows)> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("A pack needs at least one member.", nameof(members));
        _members = new (Gpt2Hooks, long, long)[members.Count];
        long offset = 0;
        for (int i = 0; i < members.Count; i++)
        {
            var (hooks, rows) = members[i];
            ArgumentNullException.ThrowIfNull(hooks);
            if (rows <= 0) throw new ArgumentException($"Pack member {i} has {rows} rows.", nameof(members));
            if (hooks.VirtualTokens != members[0].Hooks.VirtualTokens)
            {
                throw new ArgumentException(
                    $"Pack members must put the same number of virtual tokens in front: member {i} has {hooks.VirtualTokens}, member 0 {members[0].Hooks.VirtualTokens}.",
                    nameof(members));
            }

            if (hooks is not Gpt2RowwiseHooks && hooks.GetType().GetMethod(nameof(Project))!.DeclaringType != typeof(Gpt2Hooks))
            {
                throw new ArgumentException($"{hooks.GetType().Name} changes projections but not row by row: it cannot be packed.", nameof(members));
            }

            _members[i] = (hooks, rows, offset);
            offset += rows;
        }

        _rows = offset;
        _sizes = _members.Select(m => m.Rows).ToArray();
    }

    public override int VirtualTokens => _members[0].Hooks.VirtualTokens;

    public override IReadOnlyList<LayerKeyValue>? Prefix(long batchSize, bool training)
    {
        CheckRows(batchSize);
        var parts = _members.Select(m => m.Hooks.Prefix(m.Rows, training)).ToArray();
        if (parts.All(p => p is null)) return null;
        if (parts.Any(p => p is null)) throw new InvalidOperationException("Some pack members supply a prefix and others do not.");
        int layers = parts[0]!.Count;
        var result = new LayerKeyValue[layers];
        for (int l = 0; l < layers; l++)
        {
            result[l] = new LayerKeyValue(cat(parts.Select(p => p![l].Key).ToArray(), 0), cat(parts.Select(p => p![l].Value).ToArray(), 0));
        }

        return result;
    }

    public override Tensor? Prompt(long batchSize, bool training)
    {
        CheckRows(batchSize);
        var parts = _members.Select(m => (Prompt: m.Hooks.Prompt(m.Rows, training), m.Rows)).ToArray();
        if (parts.All(p => p.Prompt is null)) return null;
        if (parts.Any(p => p.Prompt is null)) throw new InvalidOperationException("Some pack members supply a prompt and others do not.");
        return cat(parts.Select(p => p.Prompt!.expand(p.Rows, p.Prompt.shape[1], p.Prompt.shape[2])).ToArray(), 0);
    }

    public override Tensor Project(int layer, Gpt2Projection site, Linear linear, Tensor input, bool training)
    {
        bool anyInput = false, anyOutput = false;
        foreach (var m in _members)
        {
            if (m.Hooks is Gpt2RowwiseHooks r)
            {
                anyInput |= r.AdjustsInput(layer, site);
                anyOutput |= r.AdjustsOutput(layer, site);
            }
        }

        if (!anyInput && !anyOutput) return linear.forward(input);

        // One split per tensor (its backward concatenates the members' gradients); a narrow per member would make each
        // member's backward allocate a gradient of the whole batch.
        Tensor[] inputs = input.split(_sizes, 0);
        Tensor x = anyInput
            ? cat(_members.Select((m, i) => m.Hooks is Gpt2RowwiseHooks r && r.AdjustsInput(layer, site)
                ? r.AdjustInput(layer, site, inputs[i], training)
                : inputs[i]).ToArray(), 0)
            : input;
        Tensor output = linear.forward(x);
        if (!anyOutput) return output;
        Tensor[] outputs = output.split(_sizes, 0);
        return cat(_members.Select((m, i) => m.Hooks is Gpt2RowwiseHooks r && r.AdjustsOutput(layer, site)
            ? r.AdjustOutput(layer, site, inputs[i], outputs[i], training)
            : outputs[i]).ToArray(), 0);
    }

    private void CheckRows(long batchSize)
    {
        if (batchSize != _rows)
        {
            throw new InvalidOperationException($"The pack's members own {_rows} rows but the batch has {batchSize}.");
        }
    }
}
