using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft;

/// <summary>
/// Our own folder for a trained method (any method): <c>peft_method.json</c> (<c>{"format", "method", "options"}</c>) and
/// <c>peft_method.safetensors</c> (the method's <see cref="IPeftMethod.StoredTensors"/>, F32). Loading rebuilds the method
/// from the registry in inference form on a base model. The base itself is not saved (for methods that change base
/// weights, the stored tensors are those weights). For the Hugging Face PEFT format see <see cref="HuggingFace.HfPeftFormat"/>.
/// </summary>
public static class PeftCheckpoint
{
    public const string ConfigFile = "peft_method.json";
    public const string WeightsFile = "peft_method.safetensors";
    public const string FormatName = "orchestrator-peft/1";

    /// <summary>Writes the folder (created if needed; files replaced).</summary>
    public static void Save(IPeftMethod method, string directory)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(directory);
        Directory.CreateDirectory(directory);
        var options = new JsonObject();
        foreach (var (k, v) in method.Options.OrderBy(kv => kv.Key, StringComparer.Ordinal)) options[k] = v;
        var json = new JsonObject { ["format"] = FormatName, ["method"] = method.Name, ["options"] = options };
        File.WriteAllText(Path.Combine(directory, ConfigFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), new UTF8Encoding(false));

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = method.StoredTensors()
            .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to_type(ScalarType.Float32)))
            .ToList();
        SafeTensors.Save(Path.Combine(directory, WeightsFile), tensors,
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "Orchestrator.Training", ["method"] = method.Name });
    }

    /// <summary>Reads the method's name and options from a folder written by <see cref="Save"/>.</summary>
    public static (string Method, IReadOnlyDictionary<string, string> Options) ReadDefinition(string directory)
    {
        string path = Path.Combine(directory, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"No {ConfigFile} in {directory}.", path);
        JsonNode root = JsonNode.Parse(File.ReadAllText(path, Encoding.UTF8)) ?? throw new FormatException($"{path} is empty.");
        if (root["format"]?.GetValue<string>() != FormatName)
        {
            throw new FormatException($"{path}: format '{root["format"]}' is not {FormatName}.");
        }

        string name = root["method"]?.GetValue<string>() ?? throw new FormatException($"{path} lacks 'method'.");
        var options = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (root["options"] is JsonObject o)
        {
            foreach (var (k, v) in o) options[k] = v?.GetValue<string>() ?? "";
        }

        return (name, options);
    }

    /// <summary>
    /// Builds the saved method on <paramref name="model"/> in inference form. Dispose the result. Methods whose options name
    /// other model folders (proxy-tuning) find them again at the same paths.
    /// </summary>
    public static IPeftMethod Load(CausalLm model, string directory, PeftContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (name, options) = ReadDefinition(directory);
        IPeftMethod method = PeftRegistry.Create(name, options, $"{ConfigFile}: options");
        try
        {
            Dictionary<string, Tensor> stored = SafeTensors.Load(Path.Combine(directory, WeightsFile), model.Device);
            try
            {
                method.Load(model, stored, context ?? PeftContext.Default);
            }
            finally
            {
                foreach (Tensor t in stored.Values) t.Dispose();
            }
        }
        catch
        {
            method.Dispose();
            throw;
        }

        return method;
    }
}
