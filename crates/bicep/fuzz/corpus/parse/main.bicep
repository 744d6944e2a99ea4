param resourceGroupName string
param subscriptionId string
param managedIdentityName string
param acrName string
param location string = resourceGroup().location
param acrpullRoleId string

module managedIdentityModule 'managedIdentity.bicep' = {
  name: 'managedIdentityDeployment'
  params: {
    name: managedIdentityName
    location: location
  }
}

module roleAssignmentModule 'roleAssignment.bicep' = {
  name: 'roleAssignmentDeployment'
  params: {
    managedIdentityPrincipalId: managedIdentityModule.outputs.principalId
    acrName: acrName
    subscriptionId: subscriptionId
    acrpullRoleId: acrpullRoleId
  }
}
