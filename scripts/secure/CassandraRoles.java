// Sets up the roles of secure mode on a Cassandra started with PasswordAuthenticator. Run by
// `scripts/services` as `java -cp CASSANDRA_LIB/* CassandraRoles.java HOST PORT NODES`, with the
// login in CASSANDRA_USERNAME and CASSANDRA_PASSWORD (never on a command line). Idempotent: when
// the login already works it changes nothing. Otherwise it logs in as the default superuser
// (cassandra/cassandra, which every new cluster has), replicates system_auth to every node,
// creates the login as a superuser and drops the default role, so the well-known password
// opens nothing.
import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.Session;
import com.datastax.driver.core.exceptions.AuthenticationException;

public class CassandraRoles {
    static Cluster cluster(String host, int port, String user, String password) {
        return Cluster.builder().addContactPoint(host).withPort(port)
            .withCredentials(user, password).withoutMetrics().withoutJMXReporting().build();
    }

    public static void main(String[] args) {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int nodes = Integer.parseInt(args[2]);
        String user = System.getenv("CASSANDRA_USERNAME");
        String password = System.getenv("CASSANDRA_PASSWORD");
        if (!user.matches("[a-z_][a-z0-9_]*") || !password.matches("[A-Za-z0-9]+")) {
            throw new IllegalArgumentException("the generated login must be [a-z0-9_] and [A-Za-z0-9]");
        }
        try (Cluster c = cluster(host, port, user, password)) {
            c.connect().close();
            System.err.println("[services] cassandra roles already set up");
            return;
        } catch (AuthenticationException first) {
            // Not set up yet: do it as the default superuser.
        }
        try (Cluster c = cluster(host, port, "cassandra", "cassandra"); Session s = c.connect()) {
            s.execute("ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': " + nodes + "}");
            // Role options take literals only; the password was checked to be alphanumeric above.
            s.execute("CREATE ROLE IF NOT EXISTS " + user + " WITH PASSWORD = '" + password + "' AND LOGIN = true AND SUPERUSER = true");
        }
        try (Cluster c = cluster(host, port, user, password); Session s = c.connect()) {
            s.execute("DROP ROLE IF EXISTS cassandra");
        }
        System.err.println("[services] cassandra roles set up; the default superuser is dropped");
    }
}
