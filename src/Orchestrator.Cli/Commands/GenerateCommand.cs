using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Orchestrator.Training.Decoding;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator generate --model DIR|PRESET [--init-seed S] [--adapter DIR] (--input TEXT | --input-ids 1,2,3)
/// [--max-new-tokens N] [--strategy greedy|beam --beams K] [--format text|json]</c>: continues one input with a base of
/// either family, optionally with a trained method, and prints the new text (or, as json, the input ids, the new ids only and
/// their text).
/// </summary>
public static class GenerateCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Register(RootCommand root)
    {
        var model = new Option<string>("--model") { Description = "A model folder (GPT-2, Llama, Mistral, Qwen2) or a preset name", Required = true };
        var initSeed = new Option<long>("--init-seed") { Description = "Seed of a preset's random weights", DefaultValueFactory = _ => 0 };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary of a preset that takes it from a tokenizer (default 256)" };
        var adapter = new Option<string?>("--adapter") { Description = "A trained method's folder (a stored cell's method or Hugging Face PEFT), GPT-2 bases" };
        var input = new Option<string?>("--input") { Description = "Input text (needs the folder's tokenizer)" };
        var inputIds = new Option<string?>("--input-ids") { Description = "Input token ids, comma-separated" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 20 };
        var strategy = new Option<string>("--strategy") { Description = "greedy or beam", DefaultValueFactory = _ => "greedy" };
        strategy.AcceptOnlyFromAmong("greedy", "beam");
        var beams = new Option<int>("--beams") { Description = "Beams for --strategy beam", DefaultValueFactory = _ => 4 };
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");

        var command = new Command("generate", "Continue an input with a base model (either family), optionally with a trained method.");
        foreach (Option option in new Option[] { model, initSeed, vocab, adapter, input, inputIds, maxNew, strategy, beams, format })
        {
            command.Options.Add(option);
        }

        command.SetAction(pr => Run(
            pr.GetValue(model)!, pr.GetValue(initSeed), pr.GetValue(vocab), pr.GetValue(adapter), pr.GetValue(input), pr.GetValue(inputIds),
            pr.GetValue(maxNew), pr.GetValue(strategy)!, pr.GetValue(beams), pr.GetValue(format)!));
        root.Subcommands.Add(command);
    }

    private static int Run(string model, long initSeed, int? vocab, string? adapter, string? input, string? inputIds, int maxNew,
        string strategy, int beams, string format)
    {
        GenerateResult result;
        try
        {
            int[]? ids = inputIds is null ? null : ParseIds(inputIds);
            result = Generation.Run(new GenerateRequest(model, input, ids, maxNew, strategy, beams, adapter, initSeed, vocab));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or NotSupportedException or InvalidOperationException)
        {
            Console.Error.WriteLine(e.Message);
            return CliApp.ExitInvalidInput;
        }

        if (format == "json")
        {
            Console.WriteLine(JsonSerializer.Serialize(new GenerateJson(result.InputIds, result.OutputIds, result.Text), Json));
        }
        else
        {
            Console.WriteLine(result.Text ?? string.Join(",", result.OutputIds));
        }

        return 0;
    }

    private static int[] ParseIds(string text)
    {
        var ids = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            {
                throw new ArgumentException($"--input-ids: '{part}' is not a token id (expected comma-separated non-negative integers).");
            }

            ids.Add(id);
        }

        return ids.Count > 0 ? ids.ToArray() : throw new ArgumentException("--input-ids is empty.");
    }

    private sealed record GenerateJson(
        [property: System.Text.Json.Serialization.JsonPropertyName("input_ids")] IReadOnlyList<int> InputIds,
        [property: System.Text.Json.Serialization.JsonPropertyName("output_ids")] IReadOnlyList<int> OutputIds,
        [property: System.Text.Json.Serialization.JsonPropertyName("text")] string? Text);
}
