using System.Text;

namespace Orchestrator.Data;

/// <summary>Minimal RFC 4180 CSV reader that reports the line of each record and of any quoting error.</summary>
public static class Csv
{
    public static List<(int Line, List<string> Fields)> Parse(string text, string path)
    {
        var rows = new List<(int, List<string>)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var recordLine = 1;
        var inQuotes = false;
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i += 2;
                        continue;
                    }

                    inQuotes = false;
                    i++;
                    if (i < text.Length && text[i] is not (',' or '\n' or '\r'))
                    {
                        throw new DatasetException($"{path}:{line}: unexpected character '{text[i]}' after a closing quote");
                    }

                    continue;
                }

                if (c == '\n')
                {
                    line++;
                }

                field.Append(c);
                i++;
                continue;
            }

            switch (c)
            {
                case '"' when field.Length == 0:
                    inQuotes = true;
                    break;
                case '"':
                    throw new DatasetException($"{path}:{line}: a quote inside an unquoted field");
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    field.Clear();
                    if (fields.Count > 1 || fields[0].Length > 0)
                    {
                        rows.Add((recordLine, fields));
                    }

                    fields = [];
                    line++;
                    recordLine = line;
                    break;
                default:
                    field.Append(c);
                    break;
            }

            i++;
        }

        if (inQuotes)
        {
            throw new DatasetException($"{path}:{recordLine}: a quoted field is not closed before the end of the file");
        }

        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            rows.Add((recordLine, fields));
        }

        return rows;
    }
}
