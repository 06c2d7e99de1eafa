using System.Collections.Concurrent;
using MiniVmm.Host.CommandLine;
using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Host.Objects;

/// <summary>
/// The user-created objects of QEMU's <c>/objects</c> container that MiniVmm knows: the
/// <c>tls-creds-x509</c> credentials from <c>-object</c> and <c>object-add</c>, by id, loaded
/// when created (as QEMU loads them).
/// </summary>
public sealed class TlsObjectTable : IDisposable
{
    private readonly ConcurrentDictionary<string, TlsCredentialsX509> _objects = new(StringComparer.Ordinal);

    /// <summary>Creates the table with the <c>-object</c>s of the command line.</summary>
    /// <exception cref="InvalidCommandLineException">One cannot be loaded (<c>-object TEXT: reason</c>).</exception>
    public TlsObjectTable(VmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (TlsCredentialsSpec spec in options.Objects)
        {
            try
            {
                Add(spec);
            }
            catch (TlsCredentialsException error)
            {
                Dispose();
                throw new InvalidCommandLineException($"-object {spec.Text}: {error.Message}");
            }
        }
    }

    /// <summary>The ids, for tests and queries.</summary>
    public IReadOnlyCollection<string> Ids => [.. _objects.Keys];

    /// <summary>Loads and adds the credentials <paramref name="spec"/> describes.</summary>
    /// <exception cref="TlsCredentialsException">The id is taken, or the files cannot be loaded.</exception>
    public void Add(TlsCredentialsSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (_objects.ContainsKey(spec.Id))
        {
            throw new TlsCredentialsException($"attempt to add duplicate property '{spec.Id}' to object (type 'container')");
        }

        TlsCredentialsX509 credentials = TlsCredentialsX509.Load(spec.Id, spec.Directory, spec.Endpoint, spec.VerifyPeer);
        if (!_objects.TryAdd(spec.Id, credentials))
        {
            credentials.Dispose();
            throw new TlsCredentialsException($"attempt to add duplicate property '{spec.Id}' to object (type 'container')");
        }
    }

    /// <summary>The credentials with <paramref name="id"/>, or null.</summary>
    public TlsCredentialsX509? Find(string id) => _objects.GetValueOrDefault(id);

    /// <summary>
    /// QMP <c>object-del</c>. The credentials are not disposed: a migration that resolved them may
    /// still use them; the collector frees them.
    /// </summary>
    /// <exception cref="TlsCredentialsException">No object has the id (QEMU's message).</exception>
    public void Remove(string id)
    {
        if (!_objects.TryRemove(id, out _))
        {
            throw new TlsCredentialsException($"object '{id}' not found");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (TlsCredentialsX509 credentials in _objects.Values)
        {
            credentials.Dispose();
        }

        _objects.Clear();
    }
}
