using System.Text.Json;

namespace Orchestrator.Hosting;

/// <summary>
/// A result's packing: <paramref name="Packed"/> when it went through the packed trainer, and the largest pack it took part
/// in (0 when not packed).
/// </summary>
public readonly record struct Packing(bool Packed, int LargestPack)
{
    /// <summary>Trained together with other cells: a calibrated pack of one trains alone.</summary>
    public bool WithOthers => LargestPack > 1;
}

/// <summary>The <c>packing</c> part of a result's provenance (written by the trial runner): whether and how it was packed.</summary>
public static class PackingProvenance
{
    /// <summary>(packed, largest pack it took part in); (false, 0) for unpacked or unreadable provenance.</summary>
    public static Packing Read(string provenanceJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(provenanceJson);
            if (doc.RootElement.TryGetProperty("packing", out var p) && p.TryGetProperty("packed", out var b) && b.GetBoolean())
            {
                return new Packing(true, p.TryGetProperty("largest_pack", out var l) ? l.GetInt32() : 1);
            }
        }
        catch (JsonException)
        {
        }

        return new Packing(false, 0);
    }
}
