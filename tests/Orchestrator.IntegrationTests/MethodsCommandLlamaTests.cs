using System.Text.Json;

namespace Orchestrator.IntegrationTests;

/// <summary><c>orchestrator methods --model</c> on the Llama-family shapes: every method's counts, the refused ones with their reason.</summary>
public sealed class MethodsCommandLlamaTests
{
    [Fact]
    public async Task Methods_on_the_smollm2_shape_list_counts_and_refusals()
    {
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["methods", "--model", "smollm2-135m", "--format", "json"]);
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("llama", root.GetProperty("family").GetString());
        Assert.Equal(3, root.GetProperty("key_value_heads").GetInt32());
        Assert.Equal(134_515_008, root.GetProperty("base_parameters").GetInt64());
        var methods = root.GetProperty("methods").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Equal(230_400, methods["lora"].GetProperty("trainable").GetInt64());    // 30 · 4 · ((576+576) + (576+192))
        Assert.Equal(57_600, methods["ia3"].GetProperty("trainable").GetInt64());      // 30 · (192 + 192 + 1536)
        Assert.Equal(134_515_008, methods["finetune"].GetProperty("trainable").GetInt64());
        Assert.Contains("no biases to train", methods["bitfit"].GetProperty("error").GetString());
        Assert.False(methods["bitfit"].TryGetProperty("trainable", out _));
    }

    [Fact]
    public async Task Methods_on_the_llama_3_2_1b_shape_in_a_table()
    {
        // JSON: the table goes through Spectre's console, which another test of the run may have bound to its own writer.
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["methods", "--model", "llama-3.2-1b", "--format", "json"]);
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal(8, root.GetProperty("key_value_heads").GetInt32());
        Assert.Equal(1_235_814_400, root.GetProperty("base_parameters").GetInt64());
        var methods = root.GetProperty("methods").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Equal(147_456, methods["ia3"].GetProperty("trainable").GetInt64()); // IA3: 16 · (512 + 512 + 8192)
    }
}
