using System.Text.Json;

namespace Orchestrator.Hosting;

/// <summary>The <c>packing</c> part of a result's provenance (written by the trial runner): whether and how it was packed.</summary>
public static class PackingProvenance
{
    /// <summary>(packed, largest pack it took part in); (false, 0) for unpacked or unreadable provenance.</summary>
    public static (bool Packed, int LargestPack) Read(string provenanceJson)
    {
        try
        {
            using var doc = JsonDocument.Parse(provenanceJson);
            if (doc.RootElement.TryGetProperty("packing", out var p) && p.TryGetProperty("packed", out var b) && b.GetBoolean())
            {
                return (true, p.TryGetProperty("largest_pack", out var l) ? l.GetInt32() : 1);
            }
        }
        catch (JsonException)
        {
        }

        return (false, 0);
    }
}
