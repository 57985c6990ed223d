using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>
/// Reading the trained methods of earlier-stage cells (<see cref="PeftContext.Dependencies"/>) for the methods that build on
/// them (AdapterFusion, prompt tuning with <c>init: from-cell</c>): their definitions and stored tensors, with messages that
/// name the dependency.
/// </summary>
internal static class PeftDependencies
{
    /// <summary>How a message names <paramref name="dependency"/>: its cell key and folder.</summary>
    public static string Describe(PeftDependency dependency) => $"dependency '{dependency.CellKey}' ({dependency.Directory})";

    /// <summary>
    /// The dependency's method definition; throws <see cref="ArgumentException"/> when its method is not
    /// <paramref name="expectedMethod"/> (<paramref name="user"/> names the method that reads it, <paramref name="why"/> says
    /// what it needs).
    /// </summary>
    public static IReadOnlyDictionary<string, string> RequireMethod(PeftDependency dependency, string expectedMethod, string user, string why)
    {
        var (method, options) = dependency.ReadDefinition();
        if (!string.Equals(method, expectedMethod, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"{user}: {Describe(dependency)} was trained with method '{method}', but {why} (method '{expectedMethod}').");
        }

        return options;
    }

    /// <summary>The dependency's stored tensors on <paramref name="device"/> (the caller disposes them).</summary>
    public static Dictionary<string, Tensor> LoadTensors(PeftDependency dependency, Device device, string user)
    {
        string path = Path.Combine(dependency.Directory, PeftCheckpoint.WeightsFile);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{user}: {Describe(dependency)} has no {PeftCheckpoint.WeightsFile}.", path);
        }

        return SafeTensors.Load(path, device);
    }

    /// <summary>Disposes every tensor of <paramref name="tensors"/>.</summary>
    public static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (Tensor t in tensors.Values) t.Dispose();
    }
}
