using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Spectre.Console;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator methods [--model PRESET|FOLDER] [--vocab N] [--format table|json]</c>: every registered PEFT method with
/// its default options, the number of parameters it trains and the number a checkpoint stores, each also as a fraction of
/// the base. Computed from shapes only: no weights are loaded or allocated. Methods of the literature that only fit
/// classification (<see cref="PeftRegistry.NotApplicable"/>) follow, marked not applicable with the reason.
/// </summary>
public static class MethodsCommand
{
    public static void Register(RootCommand root)
    {
        var model = new Option<string>("--model") { Description = "Base shape: a preset (gpt2, gpt2-medium, gpt2-large, tiny, test; llama-tiny, llama-test, smollm2-135m, llama-3.2-1b) or a folder with config.json (GPT-2 or Llama family)", DefaultValueFactory = _ => "gpt2-medium" };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary size (needed by the tiny and test presets; overrides a preset's)" };
        var format = new Option<string>("--format") { Description = "Output format: table or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");

        var command = new Command("methods", "List the PEFT methods with their default options and parameter counts (trainable, stored) on a base shape.");
        command.Options.Add(model);
        command.Options.Add(vocab);
        command.Options.Add(format);
        command.SetAction(pr => Run(pr.GetValue(model)!, pr.GetValue(vocab), pr.GetValue(format)!));
        root.Subcommands.Add(command);
    }

    private static int Run(string model, int? vocab, string format)
    {
        ModelShape config;
        long baseCount;
        try
        {
            (config, baseCount) = ResolveConfig(model, vocab);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or NotSupportedException)
        {
            Console.Error.WriteLine(e.Message);
            return CliApp.ExitInvalidInput;
        }

        var rows = new List<Row>();
        foreach (string name in PeftRegistry.OrderedNames)
        {
            using IPeftMethod method = PeftRegistry.Get(name);
            try
            {
                rows.Add(method.RefusalFor(config) is { } refusal
                    ? new Row(name, method.Options, null, $"not on the {config.FamilyName} family: {refusal}")
                    : new Row(name, method.Options, method.CountParameters(config), null));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                rows.Add(new Row(name, method.Options, null, e.Message));
            }
        }

        if (format == "json")
        {
            Console.WriteLine(ToJson(model, config, baseCount, rows));
        }
        else
        {
            PrintTable(model, config, baseCount, rows);
        }

        return 0;
    }

    private static (ModelShape Shape, long BaseParameters) ResolveConfig(string model, int? vocab)
    {
        if (Directory.Exists(model))
        {
            string path = Path.Combine(model, "config.json");
            if (!File.Exists(path)) throw new FileNotFoundException($"{model} has no config.json.", path);
            string json = File.ReadAllText(path, Encoding.UTF8);
            if (LlamaConfig.IsLlamaFamily(json))
            {
                var llama = LlamaConfig.FromJson(json);
                llama = vocab is { } lv ? (llama with { VocabSize = lv }).Validate() : llama;
                return (llama, llama.ParameterCount);
            }

            var fromFile = Gpt2Config.FromJson(json);
            fromFile = vocab is { } v ? (fromFile with { VocabSize = v }).Validate() : fromFile;
            return (fromFile, fromFile.ParameterCount);
        }

        if (LlamaConfig.IsPreset(model))
        {
            var llama = LlamaConfig.Preset(model, vocab);
            if (llama.VocabSize <= 0)
            {
                throw new ArgumentException($"The {model} preset takes its vocabulary from the tokenizer: pass --vocab N.");
            }

            return (llama.Validate(), llama.ParameterCount);
        }

        var preset = Gpt2Config.Preset(model, vocab);
        if (preset.VocabSize <= 0)
        {
            throw new ArgumentException($"The {model} preset takes its vocabulary from the tokenizer: pass --vocab N.");
        }

        preset = preset.Validate();
        return (preset, preset.ParameterCount);
    }

    private sealed record Row(string Name, IReadOnlyDictionary<string, string> Options, ParameterCounts? Counts, string? Error);

    private static string ToJson(string model, ModelShape config, long baseCount, List<Row> rows)
    {
        var methods = new JsonArray();
        foreach (var row in rows)
        {
            var options = new JsonObject();
            foreach (var (k, v) in row.Options) options[k] = v;
            var item = new JsonObject { ["name"] = row.Name, ["options"] = options };
            if (row.Counts is { } c)
            {
                item["trainable"] = c.Trainable;
                item["stored"] = c.Stored;
                item["trainable_fraction"] = c.TrainableFraction(baseCount);
                item["stored_fraction"] = c.StoredFraction(baseCount);
            }
            else
            {
                item["error"] = row.Error;
            }

            methods.Add(item);
        }

        var root = new JsonObject
        {
            ["model"] = model,
            ["family"] = config.FamilyName,
            ["layers"] = config.Layers,
            ["heads"] = config.Heads,
            ["key_value_heads"] = config.KeyValueHeads,
            ["width"] = config.Width,
            ["vocab_size"] = config.VocabSize,
            ["positions"] = config.Positions,
            ["base_parameters"] = baseCount,
            ["methods"] = methods,
            ["not_applicable"] = NotApplicableJson(),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static JsonArray NotApplicableJson()
    {
        var list = new JsonArray();
        foreach (var (name, reason) in PeftRegistry.NotApplicable)
        {
            list.Add(new JsonObject { ["name"] = name, ["applicable"] = false, ["reason"] = "not applicable to generation: " + reason });
        }

        return list;
    }

    private static void PrintTable(string model, ModelShape config, long baseCount, List<Row> rows)
    {
        string heads = config.KeyValueHeads == config.Heads ? $"H={config.Heads}" : $"H={config.Heads}, KV={config.KeyValueHeads}";
        var table = new Table().Title(
            $"PEFT methods on {Markup.Escape(model)} ({config.FamilyName}: L={config.Layers}, {heads}, d={config.Width}, V={config.VocabSize}): base {baseCount:N0} parameters");
        table.AddColumn("method").AddColumn(new TableColumn("trainable").RightAligned()).AddColumn(new TableColumn("% base").RightAligned())
            .AddColumn(new TableColumn("stored").RightAligned()).AddColumn(new TableColumn("% base").RightAligned()).AddColumn("default options");
        foreach (var row in rows)
        {
            var set = row.Options.Where(kv => kv.Value.Length > 0).ToList();
            string options = set.Count == 0 ? "–" : string.Join(" ", set.Select(kv => $"{kv.Key}={kv.Value}"));
            if (row.Counts is { } c)
            {
                table.AddRow(
                    Markup.Escape(row.Name),
                    c.Trainable.ToString("N0", CultureInfo.InvariantCulture),
                    Percent(c.TrainableFraction(baseCount)),
                    c.Stored.ToString("N0", CultureInfo.InvariantCulture),
                    Percent(c.StoredFraction(baseCount)),
                    Markup.Escape(options));
            }
            else
            {
                table.AddRow(Markup.Escape(row.Name), "–", "–", "–", "–", Markup.Escape($"{options} ({row.Error})"));
            }
        }

        foreach (var (name, reason) in PeftRegistry.NotApplicable)
        {
            table.AddRow(Markup.Escape(name), "n/a", "–", "n/a", "–", Markup.Escape("not applicable to generation: " + reason));
        }

        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160); // a file or pipe: do not wrap at 80 columns
        }

        AnsiConsole.Write(table);
    }

    private static string Percent(double fraction) =>
        (fraction * 100).ToString(fraction >= 0.01 ? "F2" : "F3", CultureInfo.InvariantCulture) + "%";
}
