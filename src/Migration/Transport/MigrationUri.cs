namespace MiniVmm.Migration.Transport;

/// <summary>The transports a migration URI can name.</summary>
public enum MigrationScheme
{
    /// <summary><c>tcp:HOST:PORT</c>.</summary>
    Tcp,
    /// <summary><c>unix:PATH</c>.</summary>
    Unix,
    /// <summary><c>exec:COMMAND</c>, run with <c>sh -c</c>.</summary>
    Exec,
    /// <summary><c>fd:NAME</c>, a descriptor passed earlier with <c>getfd</c>.</summary>
    Fd,
    /// <summary><c>file:PATH[,offset=N]</c> (QEMU ≥ 8.2 syntax).</summary>
    File,
}

/// <summary>A parsed migration URI as <c>migrate</c>, <c>migrate-incoming</c> and <c>-incoming</c> take it.</summary>
public sealed record MigrationUri(MigrationScheme Scheme, string Target, string? Host = null, int Port = 0, long Offset = 0)
{
    /// <summary>Parses a URI; throws <see cref="ArgumentException"/> with QEMU's message for an unknown protocol.</summary>
    public static MigrationUri Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        int colon = uri.IndexOf(':');
        string scheme = colon < 0 ? uri : uri[..colon];
        string rest = colon < 0 ? "" : uri[(colon + 1)..];
        switch (scheme)
        {
            case "tcp":
                (string host, int port) = ParseHostPort(rest, uri);
                return new MigrationUri(MigrationScheme.Tcp, rest, host, port);
            case "unix" when rest.Length > 0:
                return new MigrationUri(MigrationScheme.Unix, rest);
            case "exec" when rest.Length > 0:
                return new MigrationUri(MigrationScheme.Exec, rest);
            case "fd" when rest.Length > 0:
                return new MigrationUri(MigrationScheme.Fd, rest);
            case "file" when rest.Length > 0:
                return ParseFile(rest, uri);
            default:
                throw new ArgumentException("Parameter 'uri' expects a valid migration protocol");
        }
    }

    /// <inheritdoc />
    public override string ToString() => Scheme switch
    {
        MigrationScheme.Tcp => $"tcp:{Target}",
        MigrationScheme.Unix => $"unix:{Target}",
        MigrationScheme.Exec => $"exec:{Target}",
        MigrationScheme.Fd => $"fd:{Target}",
        _ => Offset == 0 ? $"file:{Target}" : $"file:{Target},offset={Offset}",
    };

    private static (string Host, int Port) ParseHostPort(string rest, string uri)
    {
        // tcp:HOST:PORT, tcp:[IPv6]:PORT; QEMU also allows options after a comma, which we ignore.
        string address = rest.Split(',')[0];
        int split = address.LastIndexOf(':');
        if (split <= 0 || !int.TryParse(address[(split + 1)..], out int port) || port is < 0 or > 65535)
        {
            throw new ArgumentException($"'{uri}' is not a valid tcp migration address: expected tcp:HOST:PORT");
        }

        string host = address[..split];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        return (host, port);
    }

    private static MigrationUri ParseFile(string rest, string uri)
    {
        long offset = 0;
        string path = rest;
        int comma = rest.LastIndexOf(",offset=", StringComparison.Ordinal);
        if (comma >= 0)
        {
            path = rest[..comma];
            string value = rest[(comma + ",offset=".Length)..];
            bool hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            bool ok = hex
                ? long.TryParse(value[2..], System.Globalization.NumberStyles.HexNumber, null, out offset)
                : long.TryParse(value, out offset);
            if (!ok || offset < 0)
            {
                throw new ArgumentException($"'{uri}': offset must be a non-negative number");
            }
        }

        return new MigrationUri(MigrationScheme.File, path, Offset: offset);
    }
}
