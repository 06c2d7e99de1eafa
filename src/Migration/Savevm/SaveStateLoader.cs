using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MiniVmm.Migration.ReturnPath;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Loads a migration stream into the registry's entries, as QEMU's <c>qemu_loadvm_state</c>
/// does: header and configuration checks, load_setup, then sections routed by section id
/// (START/FULL by idstr and instance, PART/END by the id learned from START), footer checks,
/// EOF and the optional vmdesc trailer, and load_cleanup whatever happened. Every failure is a
/// <see cref="MigrationLoadException"/> with QEMU's wording, the section and the offset.
/// Runs with the big lock held. Every byte read is counted by <see cref="SectionKind"/> in
/// <see cref="Bytes"/>; <see cref="SectionStarting"/> and <see cref="SectionLoaded"/> tell of
/// each section.
/// </summary>
public sealed partial class SaveStateLoader
{
    private const int MaxCommandLength = 1 << 16;

    private readonly SaveStateRegistry _registry;
    private readonly SavevmOptions _options;
    private readonly BigLock _bql;
    private readonly ILogger _logger;
    private readonly SectionByteCounts _bytes;

    /// <summary>Creates a loader for <paramref name="registry"/>.</summary>
    /// <param name="registry">The entries to load into.</param>
    /// <param name="options">The wire format.</param>
    /// <param name="bql">The big lock.</param>
    /// <param name="logger">Where warnings are logged.</param>
    /// <param name="bytes">Where read bytes are counted by kind; a fresh count when null.</param>
    public SaveStateLoader(
        SaveStateRegistry registry, SavevmOptions options, BigLock bql, ILogger? logger = null, SectionByteCounts? bytes = null)
    {
        _registry = registry;
        _options = options;
        _bql = bql;
        _logger = logger ?? NullLogger.Instance;
        _bytes = bytes ?? new SectionByteCounts();
    }

    /// <summary>
    /// The bytes read so far by section kind: a section from its type byte through its footer,
    /// everything outside sections as <see cref="SectionKind.Other"/>.
    /// </summary>
    public SectionByteCounts Bytes => _bytes;

    /// <summary>
    /// A section's header was read and its entry found; its body is next. Loading thread, big
    /// lock held; must not block.
    /// </summary>
    public event Action<SaveStateEntry, SectionType>? SectionStarting;

    /// <summary>
    /// A section was loaded, footer included, with its size in bytes. Not raised for a section
    /// whose load failed. Loading thread, big lock held; must not block.
    /// </summary>
    public event Action<SaveStateEntry, SectionType, long>? SectionLoaded;

    /// <summary>Loads the whole stream. Big lock held.</summary>
    /// <param name="stream">The stream.</param>
    /// <param name="incoming">
    /// The destination's return path and switchover-ack state; null for a load with no way
    /// back to a source (return-path commands are then accepted and their answers dropped).
    /// </param>
    /// <exception cref="MigrationLoadException">The stream is bad, or a device refused its state.</exception>
    public LoadResult Load(MigrationStreamReader stream, IncomingLoadState? incoming = null)
    {
        incoming ??= new IncomingLoadState();
        _bql.AssertHeld();
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (entry.Vmsd is { Unmigratable: true })
            {
                throw new MigrationLoadException($"State blocked by non-migratable device '{entry.IdStr}'", stream.Offset);
            }
        }

        var warnings = new List<string>();
        try
        {
            long start = stream.Offset;
            try
            {
                ReadHeader(stream);
            }
            finally
            {
                _bytes.Add(SectionKind.Other, stream.Offset - start);
            }

            LoadSetup(stream);
            incoming.CountSwitchoverAcks(_registry.Entries);
            int sections = LoadSections(stream, incoming);
            long trailer = stream.Offset;
            byte[]? vmdesc;
            try
            {
                vmdesc = ReadVmDescription(stream, warnings);
            }
            finally
            {
                _bytes.Add(SectionKind.Other, stream.Offset - trailer);
            }

            return new LoadResult(stream.Offset, sections, warnings, vmdesc);
        }
        catch (MigrationLoadException)
        {
            throw;
        }
        catch (MigrationStreamException error)
        {
            throw new MigrationLoadException("load of migration failed", error.Offset, null, error);
        }
        finally
        {
            LoadCleanup();
        }
    }

    private void ReadHeader(MigrationStreamReader stream)
    {
        if (stream.IsAtEnd)
        {
            throw new MigrationLoadException(
                "the migration stream is empty: it ended before the first byte of the header", 0);
        }

        uint magic = stream.GetBe32();
        if (magic != StreamHeader.Magic)
        {
            throw new MigrationLoadException(
                $"Not a migration stream (magic 0x{magic:x8}, expected 0x{StreamHeader.Magic:x8})", 0);
        }

        uint version = stream.GetBe32();
        if (version == StreamHeader.ObsoleteVersion)
        {
            throw new MigrationLoadException("SaveVM v2 format is obsolete and don't work anymore", 4);
        }

        if (version != StreamHeader.Version)
        {
            throw new MigrationLoadException(
                $"Unsupported migration stream version (file version {version}, expected {StreamHeader.Version})", 4);
        }

        if (!_options.SendConfiguration)
        {
            return;
        }

        long at = stream.Offset;
        int type = stream.PeekByte();
        if (type != (int)SectionType.Configuration)
        {
            throw new MigrationLoadException(
                type < 0 ? "Configuration section missing (the stream ended)" : $"Configuration section missing (found type 0x{type:x2})",
                at);
        }

        stream.Skip(1);
        MachineConfiguration received = MachineConfiguration.Read(stream);
        new MachineConfiguration(_options.MachineName, []).CheckReceived(received, at);
    }

    private void LoadSetup(MigrationStreamReader stream)
    {
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            if (entry.Handlers is not { } handlers || !entry.IsActive())
            {
                continue;
            }

            try
            {
                handlers.LoadSetup();
            }
            catch (Exception error)
            {
                throw new MigrationLoadException($"Load state of device {entry.IdStr} failed", stream.Offset, null, error);
            }
        }
    }

    private int LoadSections(MigrationStreamReader stream, IncomingLoadState incoming)
    {
        var started = new Dictionary<uint, (SaveStateEntry Entry, int Version)>();
        int sections = 0;
        while (true)
        {
            long at = stream.Offset;
            if (stream.IsAtEnd)
            {
                throw new MigrationLoadException(
                    "the stream ended before its EOF marker (load of migration failed: Input/output error)", at);
            }

            byte type = stream.GetByte();
            switch ((SectionType)type)
            {
                case SectionType.Start:
                case SectionType.Full:
                    LoadStartOrFull(stream, (SectionType)type, at, started);
                    sections++;
                    break;
                case SectionType.Part:
                case SectionType.End:
                    LoadPartOrEnd(stream, (SectionType)type, at, started);
                    sections++;
                    break;
                case SectionType.Command:
                    try
                    {
                        HandleCommand(stream, at, incoming);
                    }
                    finally
                    {
                        _bytes.Add(SectionKind.Other, stream.Offset - at);
                    }

                    break;
                case SectionType.Eof:
                    _bytes.Add(SectionKind.Other, stream.Offset - at);
                    return sections;
                default:
                    throw new MigrationLoadException($"Unknown savevm section type {type}", at);
            }
        }
    }

    private void LoadStartOrFull(
        MigrationStreamReader stream, SectionType type, long at, Dictionary<uint, (SaveStateEntry, int)> started)
    {
        uint sectionId = stream.GetBe32();
        var header = new SectionContext(type, sectionId);
        string idStr;
        uint instanceId;
        uint version;
        try
        {
            idStr = stream.GetCountedString();
        }
        catch (MigrationStreamException error)
        {
            throw new MigrationLoadException($"Unable to read ID string for section {sectionId}", at, header, error);
        }

        try
        {
            instanceId = stream.GetBe32();
            version = stream.GetBe32();
        }
        catch (MigrationStreamException error)
        {
            throw new MigrationLoadException("Failed to read instance/version ID", at, header with { IdStr = idStr }, error);
        }

        var context = new SectionContext(type, sectionId, idStr, instanceId);
        SaveStateEntry entry = _registry.FindForLoad(idStr, instanceId)
            ?? throw new MigrationLoadException(
                $"Unknown savevm section or instance '{idStr}' {instanceId}. Make sure that your current VM setup " +
                "matches your saved VM setup, including any hotplugged devices", at, context);

        if (version > (uint)entry.VersionId)
        {
            throw new MigrationLoadException(
                $"savevm: unsupported version {version} for '{idStr}' v{entry.VersionId}", at, context);
        }

        started[sectionId] = (entry, (int)version);
        SectionStarting?.Invoke(entry, type);
        try
        {
            try
            {
                LoadBody(stream, entry, (int)version);
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                throw new MigrationLoadException(
                    $"error while loading state for instance 0x{instanceId:x} of device '{entry.IdStr}'", at, context, error);
            }

            CheckFooter(stream, entry, sectionId, context);
        }
        finally
        {
            _bytes.Add(entry.Kind, stream.Offset - at);
        }

        SectionLoaded?.Invoke(entry, type, stream.Offset - at);
    }

    private void LoadPartOrEnd(
        MigrationStreamReader stream, SectionType type, long at, Dictionary<uint, (SaveStateEntry Entry, int Version)> started)
    {
        uint sectionId = stream.GetBe32();
        if (!started.TryGetValue(sectionId, out var section))
        {
            throw new MigrationLoadException($"Unknown savevm section {sectionId}", at, new SectionContext(type, sectionId));
        }

        var context = new SectionContext(type, sectionId, section.Entry.IdStr, section.Entry.InstanceId);
        SectionStarting?.Invoke(section.Entry, type);
        try
        {
            try
            {
                LoadBody(stream, section.Entry, section.Version);
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                throw new MigrationLoadException(
                    $"error while loading state section id {sectionId}({section.Entry.IdStr})", at, context, error);
            }

            CheckFooter(stream, section.Entry, sectionId, context);
        }
        finally
        {
            _bytes.Add(section.Entry.Kind, stream.Offset - at);
        }

        SectionLoaded?.Invoke(section.Entry, type, stream.Offset - at);
    }

    private static void LoadBody(MigrationStreamReader stream, SaveStateEntry entry, int version)
    {
        if (entry.Vmsd is { } vmsd)
        {
            vmsd.Load(stream, entry.Owner, version);
        }
        else
        {
            entry.Handlers!.LoadState(stream, version);
        }
    }

    private void CheckFooter(MigrationStreamReader stream, SaveStateEntry entry, uint sectionId, SectionContext context)
    {
        if (!_options.SendSectionFooter)
        {
            return;
        }

        long at = stream.Offset;
        int marker;
        uint footerId;
        try
        {
            marker = stream.GetByte();
            if (marker != (byte)SectionType.Footer)
            {
                throw new MigrationLoadException(
                    $"Missing section footer for {entry.IdStr} (found 0x{marker:x2})", at, context);
            }

            footerId = stream.GetBe32();
        }
        catch (MigrationLoadException)
        {
            throw;
        }
        catch (MigrationStreamException error)
        {
            throw new MigrationLoadException($"{entry.IdStr}: Read section footer failed", at, context, error);
        }

        if (footerId != sectionId)
        {
            throw new MigrationLoadException(
                $"Mismatched section id in footer for {entry.IdStr} - read 0x{footerId:x} expected 0x{sectionId:x}",
                at, context);
        }
    }

    private void HandleCommand(MigrationStreamReader stream, long at, IncomingLoadState incoming)
    {
        ushort command = stream.GetBe16();
        ushort length = stream.GetBe16();
        if (command >= (ushort)MigrationCommand.SwitchoverStart || command == (ushort)MigrationCommand.Invalid)
        {
            throw new MigrationLoadException($"MIG_CMD 0x{command:x} unknown (len 0x{length:x})", at);
        }

        // As QEMU, a command with a fixed payload length is checked against it before it is handled.
        MigrationCommandLayout layout = MigrationCommandLayout.Of((MigrationCommand)command);
        (string name, int fixedLength) = (layout.LoaderName, layout.FixedLength);
        if (fixedLength >= 0 && length != fixedLength)
        {
            throw new MigrationLoadException(
                $"{name} received with bad length - expecting {fixedLength}, got {length}", at);
        }

        switch ((MigrationCommand)command)
        {
            case MigrationCommand.OpenReturnPath:
                try
                {
                    if (!incoming.OpenReturnPath())
                    {
                        LogReturnPathAlreadyOpen();
                    }
                }
                catch (ReturnPathException error)
                {
                    throw new MigrationLoadException("CMD_OPEN_RETURN_PATH failed", at, null, error);
                }

                break;
            case MigrationCommand.Ping:
                uint value = stream.GetBe32();
                if (incoming.ReturnPath is not { } returnPath)
                {
                    throw new MigrationLoadException($"CMD_PING (0x{value:x}) received with no return path", at);
                }

                try
                {
                    returnPath.SendPong(value);
                }
                catch (ReturnPathException error)
                {
                    throw new MigrationLoadException($"CMD_PING (0x{value:x}): the PONG could not be sent", at, null, error);
                }

                break;
            default:
                throw new MigrationLoadException(
                    $"migration command {(MigrationCommand)command} (0x{command:x}, len 0x{length:x}) is not supported by MiniVmm", at);
        }
    }

    private byte[]? ReadVmDescription(MigrationStreamReader stream, List<string> warnings)
    {
        if (!_options.SendVmDescription)
        {
            return null;
        }

        int type = stream.PeekByte();
        if (type != (int)SectionType.VmDescription)
        {
            string warning = $"Expected vmdescription section, but got {(type < 0 ? 0 : type)}";
            warnings.Add(warning);
            LogWarning(warning);
            return null;
        }

        stream.Skip(1);
        try
        {
            uint length = stream.GetBe32();
            if (length > _options.MaxVmDescriptionBytes)
            {
                stream.Skip(length);
                return null;
            }

            return stream.ReadBytes(length, "vmdesc JSON");
        }
        catch (MigrationStreamException error)
        {
            // QEMU reads the trailer after the result is decided: a cut trailer is not a failure.
            string warning = $"the vmdesc trailer is incomplete: {error.Message}";
            warnings.Add(warning);
            LogWarning(warning);
            return null;
        }
    }

    private void LoadCleanup()
    {
        foreach (SaveStateEntry entry in _registry.Entries)
        {
            try
            {
                entry.Handlers?.LoadCleanup();
            }
            catch (Exception error)
            {
                LogCleanupFailed(error, entry.IdStr);
            }
        }
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "{Warning}")]
    private partial void LogWarning(string warning);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "load_cleanup of section {IdStr} failed")]
    private partial void LogCleanupFailed(Exception error, string idStr);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Warning, Message = "CMD_OPEN_RETURN_PATH received while the return path is already open; ignored")]
    private partial void LogReturnPathAlreadyOpen();
}
