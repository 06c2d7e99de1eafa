using MiniVmm.Migration.Stream;
using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState.Conformance;

/// <summary>
/// Checks every device description should pass, usable from any device's tests:
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
        CheckSubsections(description, createPopulated, mutate);
        CheckTruncations(description, saved, createPopulated);
    }

    /// <summary>Save → mutate → load → save; returns the saved bytes.</summary>
    public static byte[] CheckRoundTrip<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        byte[] saved = VMStateStreams.Save(description, createPopulated());
        Assert.That(VMStateStreams.Save(description, createPopulated()), Is.EqualTo(saved),
            $"{description.Name}: saving the same state twice gives different bytes");

        T target = createPopulated();
        mutate(target);
        Assert.That(VMStateStreams.Save(description, target), Is.Not.EqualTo(saved),
            $"{description.Name}: the mutator does not change the saved bytes, so the round trip proves nothing");

        long consumed = VMStateStreams.Load(description, saved, target);
        Assert.That(consumed, Is.EqualTo(saved.Length), $"{description.Name}: the load did not consume exactly the saved bytes");
        Assert.That(VMStateStreams.Save(description, target), Is.EqualTo(saved),
            $"{description.Name}: save → mutate → load → save gives different bytes");
        return saved;
    }

    /// <summary>Incoming versions outside [minimum, version] are refused with QEMU's messages.</summary>
    public static void CheckVersionBounds<T>(VMStateDescription<T> description, byte[] saved, Func<T> createPopulated)
        where T : class
    {
        int tooNew = description.VersionId + 1;
        Assert.That(
            () => VMStateStreams.Load(description, saved, createPopulated(), tooNew),
            Throws.TypeOf<VMStateException>().With.Property(nameof(VMStateException.Detail)).EqualTo(
                $"{description.Name}: incoming version_id {tooNew} is too new for local version_id {description.VersionId}"));

        if (description.MinimumVersionId > 0)
        {
            int tooOld = description.MinimumVersionId - 1;
            Assert.That(
                () => VMStateStreams.Load(description, saved, createPopulated(), tooOld),
                Throws.TypeOf<VMStateException>().With.Property(nameof(VMStateException.Detail)).EqualTo(
                    $"{description.Name}: incoming version_id {tooOld} is too old for local minimum version_id  {description.MinimumVersionId}"));
        }
    }

    /// <summary>Every subsection, at any depth, is sent for the populated object and round-trips on its own.</summary>
    public static void CheckSubsections<T>(VMStateDescription<T> description, Func<T> createPopulated, Action<T> mutate)
        where T : class
    {
        string vmdesc = VMStateStreams.Describe(description, createPopulated());
        foreach (VMStateDescription sub in AllSubsections(description))
        {
            Assert.That(vmdesc, Does.Contain($"\"vmsd_name\": \"{sub.Name}\""),
                $"{description.Name}: subsection {sub.Name} is not sent for the populated state");

            byte[] saved = VMStateStreams.Save(sub, createPopulated());
            T target = createPopulated();
            mutate(target);
            Assert.That(VMStateStreams.Load(sub, saved, target), Is.EqualTo(saved.Length),
                $"{sub.Name}: the load did not consume exactly the saved bytes");
            Assert.That(VMStateStreams.Save(sub, target), Is.EqualTo(saved),
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
                using MigrationStreamReader reader = VMStateStreams.Reader(prefix);
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
