using System.Text.RegularExpressions;

namespace MiniVmm.Host.Tests.Docs;

/// <summary>
/// <c>docs/logging.md</c> against the sources: every <c>[LoggerMessage]</c> in <c>src/</c> has an
/// event id of its own, and the catalogue lists exactly those ids with their level and message.
/// </summary>
[TestFixture]
public sealed partial class LoggingCatalogueTests
{
    private static readonly Lazy<string> Root = new(FindRepositoryRoot);

    [Test]
    public void Every_LoggerMessage_in_src_has_an_event_id_level_and_message()
    {
        IReadOnlyList<SourceEvent> events = SourceEvents();
        int attributes = Directory.EnumerateFiles(Path.Combine(Root.Value, "src"), "*.cs", SearchOption.AllDirectories)
            .Sum(file => AttributeStart().Count(File.ReadAllText(file)));

        Assert.Multiple(() =>
        {
            Assert.That(attributes, Is.GreaterThan(40), "the sources log through [LoggerMessage]");
            Assert.That(events, Has.Count.EqualTo(attributes), "every [LoggerMessage] attribute was read, with EventId, Level and Message");
        });
    }

    [Test]
    public void No_event_id_is_used_twice_in_src()
    {
        string[] duplicates = SourceEvents()
            .GroupBy(e => e.Id)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Location))}")
            .ToArray();

        Assert.That(duplicates, Is.Empty, "event ids used more than once");
    }

    [Test]
    public void Every_event_id_in_src_is_in_the_catalogue_with_its_level_and_message()
    {
        Dictionary<int, CatalogueRow> catalogue = CatalogueRows().GroupBy(r => r.Id).ToDictionary(g => g.Key, g => g.First());
        var problems = new List<string>();
        foreach (SourceEvent source in SourceEvents())
        {
            if (!catalogue.TryGetValue(source.Id, out CatalogueRow? row))
            {
                problems.Add($"{source.Id} ({source.Location}) is not in docs/logging.md");
                continue;
            }

            if (row.Level != source.Level)
            {
                problems.Add($"{source.Id}: level {source.Level} in {source.Location}, {row.Level} in docs/logging.md");
            }

            if (row.Message != source.Message)
            {
                problems.Add($"{source.Id}: message \"{source.Message}\" in {source.Location}, \"{row.Message}\" in docs/logging.md");
            }

            if (row.Source != source.Class)
            {
                problems.Add($"{source.Id}: logged by {source.Class}, docs/logging.md says {row.Source}");
            }
        }

        Assert.That(problems, Is.Empty);
    }

    [Test]
    public void The_catalogue_lists_each_id_once_and_only_ids_that_src_uses()
    {
        IReadOnlyList<CatalogueRow> rows = CatalogueRows();
        var used = SourceEvents().Select(e => e.Id).ToHashSet();

        Assert.Multiple(() =>
        {
            Assert.That(rows, Has.Count.GreaterThan(40), "the catalogue table was read");
            Assert.That(rows.GroupBy(r => r.Id).Where(g => g.Count() > 1).Select(g => g.Key), Is.Empty, "ids listed twice");
            Assert.That(rows.Select(r => r.Id).Where(id => !used.Contains(id)), Is.Empty, "ids no source uses");
            Assert.That(rows.Select(r => r.Meaning).Where(string.IsNullOrWhiteSpace), Is.Empty, "every row says what the event means");
        });
    }

    private static IReadOnlyList<SourceEvent> SourceEvents()
    {
        var events = new List<SourceEvent>();
        foreach (string file in Directory.EnumerateFiles(Path.Combine(Root.Value, "src"), "*.cs", SearchOption.AllDirectories))
        {
            string text = File.ReadAllText(file);
            foreach (Match attribute in LoggerMessageAttribute().Matches(text))
            {
                string arguments = attribute.Groups["args"].Value;
                Match id = EventIdArgument().Match(arguments);
                Match level = LevelArgument().Match(arguments);
                Match message = MessageArgument().Match(arguments);
                if (!id.Success || !level.Success || !message.Success)
                {
                    continue;
                }

                int line = text.AsSpan(0, attribute.Index).Count('\n') + 1;
                events.Add(new SourceEvent(
                    int.Parse(id.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                    level.Groups[1].Value,
                    Regex.Unescape(message.Groups[1].Value),
                    Path.GetFileNameWithoutExtension(file),
                    $"{Path.GetRelativePath(Root.Value, file)}:{line}"));
            }
        }

        return events;
    }

    private static IReadOnlyList<CatalogueRow> CatalogueRows()
    {
        var rows = new List<CatalogueRow>();
        foreach (string line in File.ReadLines(Path.Combine(Root.Value, "docs", "logging.md")))
        {
            Match row = CatalogueLine().Match(line);
            if (row.Success)
            {
                rows.Add(new CatalogueRow(
                    int.Parse(row.Groups["id"].Value, System.Globalization.CultureInfo.InvariantCulture),
                    row.Groups["level"].Value,
                    row.Groups["message"].Value,
                    row.Groups["source"].Value,
                    row.Groups["meaning"].Value.Trim()));
            }
        }

        return rows;
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MiniVmm.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException($"no MiniVmm.sln above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex(@"\[LoggerMessage\(")]
    private static partial Regex AttributeStart();

    [GeneratedRegex(@"\[LoggerMessage\((?<args>(?:[^""()]|""(?:[^""\\]|\\.)*"")*)\)\]", RegexOptions.Singleline)]
    private static partial Regex LoggerMessageAttribute();

    [GeneratedRegex(@"\bEventId\s*=\s*(\d+)")]
    private static partial Regex EventIdArgument();

    [GeneratedRegex(@"\bLevel\s*=\s*LogLevel\.(\w+)")]
    private static partial Regex LevelArgument();

    [GeneratedRegex(@"\bMessage\s*=\s*""((?:[^""\\]|\\.)*)""")]
    private static partial Regex MessageArgument();

    [GeneratedRegex(@"^\|\s*(?<id>\d+)\s*\|\s*(?<level>\w+)\s*\|\s*`(?<message>[^`]*)`\s*\|\s*`(?<source>\w+)`\s*\|(?<meaning>.*)\|\s*$")]
    private static partial Regex CatalogueLine();

    private sealed record SourceEvent(int Id, string Level, string Message, string Class, string Location);

    private sealed record CatalogueRow(int Id, string Level, string Message, string Source, string Meaning);
}
