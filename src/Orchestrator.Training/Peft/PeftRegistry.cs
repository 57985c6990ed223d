using Orchestrator.Training.Peft.Finetune;

namespace Orchestrator.Training.Peft;

/// <summary>Looks PEFT methods up by name (case-insensitive). Each lookup returns a fresh instance.</summary>
public static class PeftRegistry
{
    private static readonly SortedDictionary<string, Func<IPeftMethod>> Factories = new(StringComparer.OrdinalIgnoreCase)
    {
        [FinetuneMethod.MethodName] = () => new FinetuneMethod(),
    };

    /// <summary>Names of the registered methods, sorted.</summary>
    public static IReadOnlyList<string> Names => Factories.Keys.ToArray();

    /// <summary>The method called <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known methods.</exception>
    public static IPeftMethod Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (TryGet(name, out IPeftMethod? method))
        {
            return method;
        }

        throw new ArgumentException(
            $"Unknown PEFT method '{name}'. Known methods: {string.Join(", ", Factories.Keys)}.", nameof(name));
    }

    public static bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPeftMethod? method)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Factories.TryGetValue(name.Trim(), out Func<IPeftMethod>? factory))
        {
            method = factory();
            return true;
        }

        method = null;
        return false;
    }
}
