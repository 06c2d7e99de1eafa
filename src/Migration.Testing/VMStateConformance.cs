using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;
using NUnit.Framework;

namespace MiniVmm.Migration.Testing;

/// <summary>
/// Checks every VMState description should pass, for any device author's NUnit tests (failures
/// are NUnit assertion failures naming the description):
/// <code>
/// VMStateConformance.Check(MyDevice.Vmsd, () =&gt; MyDevice.Populated(), s =&gt; s.Counter++);
/// </code>
/// </summary>
public static class VMStateConformance
{
    /// <summary>Prefixes of streams up to this many bytes are all tried by the truncation check.</summary>
    public const int MaxTruncationCheckLength = 4096;

    /// <summary>
    /// Runs every check on <paramref name="description"/>:
    /// <list type="bullet">
    /// <item>saving is deterministic, and <paramref name="mutate"/> really changes the saved bytes;</item>
    /// <item>save → mutate → load → save gives the same bytes, and the load consumes exactly the saved bytes;</item>
    /// <item>an incoming version above the own version or below the minimum is refused with QEMU's text;</item>
    /// <item>what every older version from the minimum up writes loads, consuming exactly its bytes;</item>
    /// <item>the vmdesc names every field with its type;</item>
    /// <item>every subsection (at any depth) is sent for the populated object and round-trips on its own;</item>
    /// <item>every truncation of the stream fails with a <see cref="MigrationStreamException"/> or stops
    /// cleanly before an incomplete subsection header, never with another exception.</item>
    /// </list>
    /// </summary>
    /// <param name="description">The description under test.</param>
    /// <param name="createPopulated">Creates a state object with non-default values in every field and every subsection needed.</param>
    /// <param name="mutate">Changes a populated object so that its saved bytes differ.</param>
    public static void Check<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(createPopulated);
        ArgumentNullException.ThrowIfNull(mutate);

        byte[] saved = CheckRoundTrip(description, createPopulated, mutate);
        CheckVersionBounds(description, saved, createPopulated);
        CheckOlderVersions(description, createPopulated, mutate);
        CheckDescription(description, createPopulated);
        CheckSubsections(description, createPopulated, mutate);
        CheckTruncations(description, saved, createPopulated);
    }

    /// <summary>Save → mutate → load → save; returns the saved bytes.</summary>
    public static byte[] CheckRoundTrip<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        byte[] saved = VMStateBytes.Save(description, createPopulated());
        Assert.That(VMStateBytes.Save(description, createPopulated()), Is.EqualTo(saved),
            $"{description.Name}: saving the same state twice gives different bytes");

        T target = createPopulated();
        mutate(target);
        Assert.That(VMStateBytes.Save(description, target), Is.Not.EqualTo(saved),
            $"{description.Name}: the mutator does not change the saved bytes, so the round trip proves nothing");

        long consumed = VMStateBytes.Load(description, saved, target);
        Assert.That(consumed, Is.EqualTo(saved.Length), $"{description.Name}: the load did not consume exactly the saved bytes");
        Assert.That(VMStateBytes.Save(description, target), Is.EqualTo(saved),
            $"{description.Name}: save → mutate → load → save gives different bytes");
        return saved;
    }

    /// <summary>Incoming versions outside [minimum, version] are refused with QEMU's messages.</summary>
    public static void CheckVersionBounds<T>(VMStateDescription<T> description, byte[] saved, Func<T> createPopulated)
        where T : class
    {
        int tooNew = description.VersionId + 1;
        Assert.That(
            () => VMStateBytes.Load(description, saved, createPopulated(), tooNew),
            Throws.TypeOf<VMStateException>().With.Property(nameof(VMStateException.Detail)).EqualTo(
                $"{description.Name}: incoming version_id {tooNew} is too new for local version_id {description.VersionId}"));

        if (description.MinimumVersionId > 0)
        {
            int tooOld = description.MinimumVersionId - 1;
            Assert.That(
                () => VMStateBytes.Load(description, saved, createPopulated(), tooOld),
                Throws.TypeOf<VMStateException>().With.Property(nameof(VMStateException.Detail)).EqualTo(
                    $"{description.Name}: incoming version_id {tooOld} is too old for local minimum version_id  {description.MinimumVersionId}"));
        }
    }

    /// <summary>
    /// What each older version (minimum to current − 1) of the device writes loads into a current
    /// one, consuming exactly its bytes; the fields that version sends arrive (saved again as that
    /// version, the bytes are the same).
    /// </summary>
    public static void CheckOlderVersions<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        for (int version = Math.Max(description.MinimumVersionId, 1); version < description.VersionId; version++)
        {
            byte[] older = VMStateBytes.SaveAsVersion(description, createPopulated(), version);
            T target = createPopulated();
            mutate(target);
            Assert.That(VMStateBytes.Load(description, older, target, version), Is.EqualTo(older.Length),
                $"{description.Name}: a version {version} stream was not consumed exactly");
            Assert.That(VMStateBytes.SaveAsVersion(description, target, version), Is.EqualTo(older),
                $"{description.Name}: the fields of a version {version} stream did not all arrive");
        }
    }

    /// <summary>The vmdesc names the description and every top-level field, each with a type.</summary>
    public static void CheckDescription<T>(VMStateDescription<T> description, Func<T> createPopulated)
        where T : class
    {
        var vmdesc = System.Text.Json.Nodes.JsonNode.Parse(VMStateBytes.Describe(description, createPopulated()))!.AsObject();
        Assert.That(vmdesc["vmsd_name"]?.GetValue<string>(), Is.EqualTo(description.Name), $"{description.Name}: vmdesc names another description");
        var described = (vmdesc["fields"] as System.Text.Json.Nodes.JsonArray ?? [])
            .Select(f => (Name: f?["name"]?.GetValue<string>(), Type: f?["type"]?.GetValue<string>()))
            .ToList();
        foreach (VMStateFieldInfo field in description.Fields.Where(f => f.VersionId <= description.VersionId && !f.HasExistsPredicate))
        {
            Assert.That(described.Any(d => d.Name == field.Name), Is.True, $"{description.Name}: field {field.Name} is missing from the vmdesc");
        }

        Assert.That(described.All(d => !string.IsNullOrEmpty(d.Name) && !string.IsNullOrEmpty(d.Type)), Is.True,
            $"{description.Name}: a vmdesc field has no name or no type");
    }

    /// <summary>Every subsection, at any depth, is sent for the populated object and round-trips on its own.</summary>
    public static void CheckSubsections<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        string vmdesc = VMStateBytes.Describe(description, createPopulated());
        foreach (VMStateDescription sub in AllSubsections(description))
        {
            Assert.That(vmdesc, Does.Contain($"\"vmsd_name\": \"{sub.Name}\""),
                $"{description.Name}: subsection {sub.Name} is not sent for the populated state");

            byte[] saved = VMStateBytes.Save(sub, createPopulated());
            T target = createPopulated();
            mutate(target);
            Assert.That(VMStateBytes.Load(sub, saved, target), Is.EqualTo(saved.Length),
                $"{sub.Name}: the load did not consume exactly the saved bytes");
            Assert.That(VMStateBytes.Save(sub, target), Is.EqualTo(saved),
                $"{sub.Name}: save → mutate → load → save gives different bytes");
        }
    }

    /// <summary>Every proper prefix of <paramref name="saved"/> fails as a stream error or stops cleanly.</summary>
    public static void CheckTruncations<T>(VMStateDescription<T> description, byte[] saved, Func<T> createPopulated)
        where T : class
    {
        int limit = Math.Min(saved.Length, MaxTruncationCheckLength);
        for (int length = 0; length < limit; length++)
        {
            byte[] prefix = saved[..length];
            try
            {
                using MigrationStreamReader reader = VMStateBytes.Reader(prefix);
                description.Load(reader, createPopulated(), description.VersionId);

                // Without an exception, the load may only have stopped in front of an incomplete subsection header.
                Assert.That(reader.PeekByte(), Is.EqualTo(-1).Or.EqualTo(VMStateDescription.SubsectionMarker),
                    $"{description.Name}: a prefix of {length} bytes loaded without error");
            }
            catch (MigrationStreamException)
            {
                // Expected for most prefixes.
            }
            catch (Exception error) when (error is not AssertionException)
            {
                Assert.Fail($"{description.Name}: a prefix of {length} bytes failed with {error.GetType().Name} instead of a stream error: {error}");
            }
        }
    }

    private static IEnumerable<VMStateDescription> AllSubsections(VMStateDescription description)
    {
        foreach (VMStateDescription sub in description.Subsections)
        {
            yield return sub;
            foreach (VMStateDescription nested in AllSubsections(sub))
            {
                yield return nested;
            }
        }
    }
}
