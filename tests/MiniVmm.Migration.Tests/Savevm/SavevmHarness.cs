using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>One section found by <see cref="SavevmHarness.ScanSections"/>.</summary>
internal sealed record ScannedSection(SectionType Type, uint SectionId, string IdStr, long Offset)
{
    public override string ToString() => $"{Type} {IdStr}";
}

/// <summary>Saves and loads whole streams the way a migration does, for tests.</summary>
internal static class SavevmHarness
{
    private const int MaxRounds = 1000;

    /// <summary>
    /// A whole QEMU 7.2-style precopy save on the calling thread: header and setup without the
    /// big lock, iteration rounds until every entry finished (or <paramref name="iterationRounds"/>
    /// rounds), completion and cleanup with it.
    /// </summary>
    public static byte[] Save(
        SaveStateRegistry registry, SavevmOptions? options = null, BigLock? bql = null, int? iterationRounds = null)
    {
        bql ??= new BigLock();
        options ??= new SavevmOptions();
        var transport = new MemoryStream();
        using (var stream = new MigrationStreamWriter(transport, leaveOpen: true))
        {
            var writer = new SaveStateWriter(registry, stream, options, bql);
            writer.WriteHeader();
            writer.Setup();
            int rounds = 0;
            while (rounds < (iterationRounds ?? MaxRounds) && writer.Iterate() == IterationOutcome.MoreData)
            {
                Assert.That(++rounds, Is.LessThan(MaxRounds), "iteration never finished");
            }

            using (bql.Acquire())
            {
                writer.CompletePrecopy();
                writer.Cleanup();
            }
        }

        return transport.ToArray();
    }

    /// <summary>Loads <paramref name="bytes"/> into <paramref name="registry"/> with the big lock held.</summary>
    public static LoadResult Load(SaveStateRegistry registry, byte[] bytes, SavevmOptions? options = null, BigLock? bql = null)
    {
        bql ??= new BigLock();
        using BigLock.Scope held = bql.Acquire();
        using var reader = new MigrationStreamReader(new MemoryStream(bytes, writable: false));
        return new SaveStateLoader(registry, options ?? new SavevmOptions(), bql).Load(reader);
    }

    /// <summary>Loads and returns the failure (asserting that there is one, of type MigrationLoadException).</summary>
    public static MigrationLoadException LoadFails(SaveStateRegistry registry, byte[] bytes, SavevmOptions? options = null)
    {
        MigrationLoadException? failure = null;
        try
        {
            Load(registry, bytes, options);
        }
        catch (MigrationLoadException error)
        {
            failure = error;
        }

        Assert.That(failure, Is.Not.Null, "the load succeeded");
        return failure!;
    }

    /// <summary>
    /// Lists the sections of a stream with a <c>none</c> configuration and no subsections.
    /// <paramref name="skipBody"/> consumes one section body given the entry's idstr.
    /// </summary>
    public static List<ScannedSection> ScanSections(byte[] bytes, Action<string, MigrationStreamReader> skipBody)
    {
        using var reader = new MigrationStreamReader(new MemoryStream(bytes, writable: false));
        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Magic));
        Assert.That(reader.GetBe32(), Is.EqualTo(StreamHeader.Version));
        Assert.That(reader.GetByte(), Is.EqualTo((byte)SectionType.Configuration));
        reader.Skip(reader.GetBe32());
        var sections = new List<ScannedSection>();
        var names = new Dictionary<uint, string>();
        while (true)
        {
            long at = reader.Offset;
            var type = (SectionType)reader.GetByte();
            if (type == SectionType.Eof)
            {
                return sections;
            }

            uint id = reader.GetBe32();
            string idStr;
            if (type is SectionType.Start or SectionType.Full)
            {
                idStr = reader.GetCountedString();
                reader.GetBe32();
                reader.GetBe32();
                names[id] = idStr;
            }
            else
            {
                Assert.That(type, Is.EqualTo(SectionType.Part).Or.EqualTo(SectionType.End), $"type byte at {at}");
                idStr = names[id];
            }

            skipBody(idStr, reader);
            Assert.That(reader.GetByte(), Is.EqualTo((byte)SectionType.Footer), $"footer of {type} {idStr}");
            Assert.That(reader.GetBe32(), Is.EqualTo(id), $"footer id of {type} {idStr}");
            sections.Add(new ScannedSection(type, id, idStr, at));
        }
    }

    /// <summary>Skips a <see cref="RecordingHandlers"/> body.</summary>
    public static void SkipRecordedBody(MigrationStreamReader reader)
    {
        reader.GetCountedString();
        reader.Skip(reader.GetBe32());
    }
}
